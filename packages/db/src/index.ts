export {
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  isQueryCancelled,
  QueryCancelledError,
} from "./cancellation.ts";
export { type Database, type OpenDatabaseOptions, openDatabase } from "./open-database.ts";
