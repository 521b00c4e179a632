export {
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  isQueryCancelled,
  QueryCancelledError,
  StatementTimeoutError,
} from "./cancellation.ts";
export { type Database, jsonValue, type OpenDatabaseOptions, openDatabase, rowsOf } from "./open-database.ts";
export { type AnyDb, QueueVacuum } from "./queue-vacuum.ts";
