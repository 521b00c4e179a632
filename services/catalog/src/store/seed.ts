import { sql } from "drizzle-orm";
import type { PgCatalogRepository } from "./catalog-repository.ts";
import { menuItems, restaurants } from "./schema.ts";

type Db = ConstructorParameters<typeof PgCatalogRepository>[0];

/** Demo data for `pnpm start`: 24 restaurants in Berlin with 12 menu items each. Deterministic ids. */
const cuisines: Record<string, { names: string[]; dishes: [string, string, number][] }> = {
  pizza: {
    names: ["Forno Rosso", "Pizzeria Napoli", "Slice Society", "Il Vesuvio"],
    dishes: [
      ["Margherita", "Pizzas", 950],
      ["Diavola", "Pizzas", 1150],
      ["Quattro Formaggi", "Pizzas", 1250],
      ["Funghi", "Pizzas", 1050],
      ["Calzone", "Pizzas", 1200],
      ["Marinara", "Pizzas", 850],
      ["Caprese Salad", "Starters", 790],
      ["Garlic Bread", "Starters", 450],
      ["Arancini", "Starters", 650],
      ["Tiramisu", "Desserts", 590],
      ["Panna Cotta", "Desserts", 550],
      ["San Pellegrino", "Drinks", 290],
    ],
  },
  sushi: {
    names: ["Sakura Sushi", "Tokyo Roll", "Umami House", "Koi Bar"],
    dishes: [
      ["Salmon Nigiri", "Nigiri", 590],
      ["Tuna Nigiri", "Nigiri", 690],
      ["California Roll", "Rolls", 890],
      ["Dragon Roll", "Rolls", 1290],
      ["Spicy Tuna Roll", "Rolls", 1090],
      ["Veggie Roll", "Rolls", 790],
      ["Miso Soup", "Starters", 390],
      ["Edamame", "Starters", 450],
      ["Gyoza", "Starters", 590],
      ["Mochi", "Desserts", 490],
      ["Matcha Ice Cream", "Desserts", 450],
      ["Green Tea", "Drinks", 290],
    ],
  },
  burgers: {
    names: ["Burger Lab", "Grill Station", "Patty Palace", "Smash Club"],
    dishes: [
      ["Classic Burger", "Burgers", 990],
      ["Cheeseburger", "Burgers", 1090],
      ["Bacon Burger", "Burgers", 1250],
      ["Veggie Burger", "Burgers", 1050],
      ["Chicken Burger", "Burgers", 1090],
      ["Double Smash", "Burgers", 1390],
      ["Fries", "Sides", 390],
      ["Sweet Potato Fries", "Sides", 490],
      ["Onion Rings", "Sides", 450],
      ["Brownie", "Desserts", 450],
      ["Milkshake", "Drinks", 550],
      ["Lemonade", "Drinks", 350],
    ],
  },
  indian: {
    names: ["Masala Route", "Delhi Darbar", "Curry Corner", "Tandoor Nights"],
    dishes: [
      ["Butter Chicken", "Curries", 1350],
      ["Chicken Tikka Masala", "Curries", 1350],
      ["Palak Paneer", "Curries", 1150],
      ["Chana Masala", "Curries", 1050],
      ["Lamb Rogan Josh", "Curries", 1550],
      ["Vegetable Biryani", "Rice", 1190],
      ["Garlic Naan", "Breads", 350],
      ["Samosa", "Starters", 490],
      ["Onion Bhaji", "Starters", 450],
      ["Gulab Jamun", "Desserts", 450],
      ["Mango Lassi", "Drinks", 390],
      ["Masala Chai", "Drinks", 290],
    ],
  },
  vietnamese: {
    names: ["Pho Saigon", "Banh Mi Bar", "Lotus Kitchen", "Hanoi Street"],
    dishes: [
      ["Pho Bo", "Soups", 1190],
      ["Pho Ga", "Soups", 1090],
      ["Bun Cha", "Noodles", 1190],
      ["Bun Bo Nam Bo", "Noodles", 1150],
      ["Banh Mi Pork", "Sandwiches", 790],
      ["Banh Mi Tofu", "Sandwiches", 750],
      ["Summer Rolls", "Starters", 590],
      ["Spring Rolls", "Starters", 550],
      ["Green Papaya Salad", "Starters", 690],
      ["Che Ba Mau", "Desserts", 450],
      ["Iced Coffee", "Drinks", 390],
      ["Lime Soda", "Drinks", 350],
    ],
  },
  mexican: {
    names: ["Taqueria Sol", "El Camino", "Casa Verde", "Burrito Brothers"],
    dishes: [
      ["Tacos al Pastor", "Tacos", 1090],
      ["Fish Tacos", "Tacos", 1190],
      ["Veggie Tacos", "Tacos", 950],
      ["Chicken Burrito", "Burritos", 1150],
      ["Beef Burrito", "Burritos", 1250],
      ["Quesadilla", "Mains", 950],
      ["Nachos", "Starters", 790],
      ["Guacamole", "Starters", 590],
      ["Elote", "Starters", 490],
      ["Churros", "Desserts", 490],
      ["Horchata", "Drinks", 390],
      ["Jarritos", "Drinks", 350],
    ],
  },
};

const streets = [
  "Torstrasse",
  "Kastanienallee",
  "Oranienstrasse",
  "Bergmannstrasse",
  "Kantstrasse",
  "Schoenhauser Allee",
];

export function demoData(): {
  restaurants: (typeof restaurants.$inferInsert)[];
  menuItems: (typeof menuItems.$inferInsert)[];
} {
  const rs: (typeof restaurants.$inferInsert)[] = [];
  const ms: (typeof menuItems.$inferInsert)[] = [];
  let n = 0;
  for (const [cuisine, { names, dishes }] of Object.entries(cuisines)) {
    for (const name of names) {
      n++;
      const id = `rst-${String(n).padStart(3, "0")}`;
      rs.push({
        id,
        name,
        description: `${name}: ${cuisine} in Berlin.`,
        cuisine,
        addressLine1: `${streets[n % streets.length]} ${10 + n}`,
        city: "Berlin",
        postalCode: String(10115 + n * 7),
        countryCode: "DE",
        // Spread around Berlin Mitte, about 300 m apart.
        latitude: 52.52 + ((n * 37) % 40) / 1000 - 0.02,
        longitude: 13.405 + ((n * 53) % 60) / 1000 - 0.03,
        ratingTenths: 35 + (n % 15),
        etaMinutes: 20 + (n % 4) * 5,
        deliveryFeeMinor: n % 3 === 0 ? 0 : 199,
        currencyCode: "EUR",
        // One closed restaurant, so clients and tests see how closed ones behave.
        open: n !== 24,
        createdAt: new Date(Date.UTC(2026, 0, n)),
      });
      dishes.forEach(([dish, category, price], i) => {
        ms.push({
          id: `${id}-item-${String(i + 1).padStart(2, "0")}`,
          restaurantId: id,
          name: dish,
          description: "",
          category,
          position: i,
          priceMinor: price + (n % 3) * 50,
          currencyCode: "EUR",
          // The last drink of every fourth restaurant is sold out.
          available: !(n % 4 === 0 && i === dishes.length - 1),
        });
      });
    }
  }
  return { restaurants: rs, menuItems: ms };
}

/**
 * Inserts the demo data; rows that already exist are left as they are. Returns how many rows it wrote.
 * A start that finds every demo row in place writes nothing: one read instead of a transaction of 312
 * inserts, which took catalog's bundle ~70 ms longer to reach SERVING (docs/BENCHMARKS-ROUNDS.md,
 * "Twenty-seventh round").
 */
export async function seedDemoData(db: Db): Promise<{ restaurants: number; menuItems: number }> {
  const data = demoData();
  const restaurantIds = data.restaurants.map((r) => r.id);
  const itemIds = data.menuItems.map((m) => m.id);
  // Inside the subquery drizzle writes menu_items' columns unqualified; "id" there is the menu item's.
  const [present] = await db
    .select({
      restaurants: sql<number>`count(*)`.mapWith(Number),
      menuItems: sql<number>`(select count(*) from ${menuItems}
        where ${menuItems.id} = any(${sql.param(itemIds)}::text[]))`.mapWith(Number),
    })
    .from(restaurants)
    .where(sql`${restaurants.id} = any(${sql.param(restaurantIds)}::text[])`);
  if (present?.restaurants === restaurantIds.length && present.menuItems === itemIds.length)
    return { restaurants: 0, menuItems: 0 };
  return db.transaction(async (tx) => {
    const r = await tx
      .insert(restaurants)
      .values(data.restaurants)
      .onConflictDoNothing()
      .returning({ id: restaurants.id });
    const m = await tx
      .insert(menuItems)
      .values(data.menuItems)
      .onConflictDoNothing()
      .returning({ id: menuItems.id });
    return { restaurants: r.length, menuItems: m.length };
  });
}
