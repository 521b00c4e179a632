export {
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  isQueryCancelled,
  QueryCancelledError,
  StatementTimeoutError,
} from "./cancellation.ts";
export {
  connectionBudget,
  type Database,
  jsonValue,
  type OpenDatabaseOptions,
  openDatabase,
  type PoolSizes,
  rowsOf,
} from "./open-database.ts";
export { type AnyDb, QueueVacuum } from "./queue-vacuum.ts";
