import { Code } from "@connectrpc/connect";
import { ErrorReason } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { DispatchError } from "@dispatch/runtime";

const domain = "catalog.dispatch";

export function restaurantNotFound(id: string): DispatchError {
  return new DispatchError(Code.NotFound, `restaurant ${id} not found`, {
    reason: ErrorReason[ErrorReason.RESTAURANT_NOT_FOUND],
    domain,
    metadata: { restaurant_id: id },
  });
}

export function invalidPageToken(): DispatchError {
  return new DispatchError(Code.InvalidArgument, "page_token is not a token this query returned", {
    reason: ErrorReason[ErrorReason.INVALID_PAGE_TOKEN],
    domain,
    fieldViolations: [{ field: "page_token", description: "unrecognised or from a different query" }],
  });
}
