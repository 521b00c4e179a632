CREATE TABLE "menu_items" (
	"id" text PRIMARY KEY NOT NULL,
	"restaurant_id" text NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"category" text NOT NULL,
	"position" integer NOT NULL,
	"price_minor" bigint NOT NULL,
	"currency_code" text NOT NULL,
	"available" boolean DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE TABLE "restaurants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"cuisine" text NOT NULL,
	"address_line1" text NOT NULL,
	"city" text NOT NULL,
	"postal_code" text NOT NULL,
	"country_code" text NOT NULL,
	"latitude" double precision NOT NULL,
	"longitude" double precision NOT NULL,
	"rating_tenths" integer DEFAULT 0 NOT NULL,
	"eta_minutes" integer NOT NULL,
	"delivery_fee_minor" bigint NOT NULL,
	"currency_code" text NOT NULL,
	"open" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "menu_items" ADD CONSTRAINT "menu_items_restaurant_id_restaurants_id_fk" FOREIGN KEY ("restaurant_id") REFERENCES "public"."restaurants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "menu_items_restaurant_position_idx" ON "menu_items" USING btree ("restaurant_id","position");--> statement-breakpoint
CREATE INDEX "restaurants_name_id_idx" ON "restaurants" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "restaurants_cuisine_name_idx" ON "restaurants" USING btree ("cuisine","name","id");