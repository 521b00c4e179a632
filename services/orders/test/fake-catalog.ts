import { Code } from "@connectrpc/connect";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { DispatchError, type Server, serve } from "@dispatch/runtime";

const eur = (amountMinor: number) => ({ currencyCode: "EUR", amountMinor: BigInt(amountMinor) });

/**
 * A catalog double served by the real runtime over HTTP/2, with prices the tests control. Orders must
 * take its prices, not the client's.
 */
export async function startFakeCatalog(): Promise<{
  server: Server;
  calls: () => number;
  setOpen(open: boolean): void;
}> {
  let calls = 0;
  let open = true;
  const items: Record<string, { name: string; price: ReturnType<typeof eur>; available: boolean }> = {
    "pizza-1": { name: "Margherita", price: eur(950), available: true },
    "pizza-2": { name: "Diavola", price: eur(1150), available: true },
    "sold-out": { name: "Calzone", price: eur(1200), available: false },
  };
  const server = await serve({
    name: "fake-catalog",
    port: 0,
    host: "127.0.0.1",
    adminPort: false,
    logLevel: "silent",
    services: [
      [
        CatalogService,
        {
          batchGetMenuItems(req) {
            calls++;
            if (req.restaurantId !== "rst-1") throw new DispatchError(Code.NotFound, "no such restaurant");
            return {
              restaurant: { id: "rst-1", name: "Forno Rosso", open, deliveryFee: eur(199) },
              items: req.menuItemIds
                .filter((id) => items[id])
                .map((id) => ({ id, restaurantId: "rst-1", ...items[id] })),
              missingMenuItemIds: req.menuItemIds.filter((id) => !items[id]),
            };
          },
        },
      ],
    ],
  });
  return { server, calls: () => calls, setOpen: (o) => (open = o) };
}
