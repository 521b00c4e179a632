import { randomUUID } from "node:crypto";
import type { Database } from "@dispatch/db";
import { and, asc, eq, gt, isNull, ne, sql } from "drizzle-orm";
import type { Device, Platform, User } from "../domain/model.ts";
import type { IdentityRepository, RotateResult } from "../domain/ports.ts";
import { devices, refreshFamilies, refreshTokens, type schema, users } from "./schema.ts";

type Db = Database<typeof schema>["db"];

export class PgIdentityRepository implements IdentityRepository {
  constructor(private readonly db: Db) {}

  async createUser(u: {
    id: string;
    email: string;
    displayName: string;
    passwordHash: string;
  }): Promise<User | undefined> {
    const [row] = await this.db
      .insert(users)
      .values(u)
      .onConflictDoNothing({ target: users.email })
      .returning();
    return row && toUser(row);
  }

  async findCredentials(email: string) {
    const [row] = await this.db.select().from(users).where(eq(users.email, email));
    return row && { user: toUser(row), passwordHash: row.passwordHash };
  }

  async getUser(id: string): Promise<User | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const [row] = await this.db.select().from(users).where(eq(users.id, id));
    return row && toUser(row);
  }

  async startFamily(userId: string, tokenHash: string, expiresAt: Date): Promise<string> {
    const familyId = randomUUID();
    await this.db.transaction(async (tx) => {
      await tx.insert(refreshFamilies).values({ id: familyId, userId });
      await tx.insert(refreshTokens).values({ tokenHash, familyId, userId, expiresAt });
    });
    return familyId;
  }

  async rotate(tokenHash: string, next: { tokenHash: string; expiresAt: Date }): Promise<RotateResult> {
    // The conditional update is the race's referee: concurrent spends of one token wait on its row lock,
    // then find used_at set and update nothing.
    const spent = await this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(refreshTokens)
        .set({ usedAt: sql`now()` })
        .where(
          and(
            eq(refreshTokens.tokenHash, tokenHash),
            isNull(refreshTokens.usedAt),
            gt(refreshTokens.expiresAt, sql`now()`),
            sql`${refreshTokens.familyId} in (select id from refresh_families where revoked_at is null)`,
          ),
        )
        .returning({ familyId: refreshTokens.familyId, userId: refreshTokens.userId });
      if (!row) return undefined;
      await tx.insert(refreshTokens).values({
        tokenHash: next.tokenHash,
        familyId: row.familyId,
        userId: row.userId,
        expiresAt: next.expiresAt,
      });
      return row;
    });
    if (spent) return { ok: true, userId: spent.userId, familyId: spent.familyId };

    const [row] = await this.db
      .select({
        usedAt: refreshTokens.usedAt,
        expiresAt: refreshTokens.expiresAt,
        familyId: refreshTokens.familyId,
        revokedAt: refreshFamilies.revokedAt,
      })
      .from(refreshTokens)
      .innerJoin(refreshFamilies, eq(refreshFamilies.id, refreshTokens.familyId))
      .where(eq(refreshTokens.tokenHash, tokenHash));
    if (!row) return { ok: false, why: "invalid" };
    if (row.usedAt) {
      // A spent token came back: someone holds a copy. Revoke the whole session.
      await this.revokeFamily(row.familyId, "refresh token reuse");
      return { ok: false, why: "reused" };
    }
    if (row.revokedAt) return { ok: false, why: "invalid" };
    if (row.expiresAt.getTime() <= Date.now()) return { ok: false, why: "expired" };
    return { ok: false, why: "invalid" };
  }

  async revokeFamilyOf(tokenHash: string, reason: string): Promise<void> {
    const [row] = await this.db
      .select({ familyId: refreshTokens.familyId })
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, tokenHash));
    if (row) await this.revokeFamily(row.familyId, reason);
  }

  private async revokeFamily(familyId: string, reason: string): Promise<void> {
    await this.db
      .update(refreshFamilies)
      .set({ revokedAt: sql`now()`, revokeReason: reason })
      .where(and(eq(refreshFamilies.id, familyId), isNull(refreshFamilies.revokedAt)));
  }

  async upsertDevice(d: {
    userId: string;
    deviceId: string;
    platform: Platform;
    pushToken: string;
  }): Promise<Device> {
    return this.db.transaction(async (tx) => {
      // A push token belongs to one installation: if another account registered it, that row is stale.
      await tx.delete(devices).where(and(eq(devices.pushToken, d.pushToken), ne(devices.userId, d.userId)));
      const [row] = await tx
        .insert(devices)
        .values(d)
        .onConflictDoUpdate({
          target: [devices.userId, devices.deviceId],
          set: { platform: d.platform, pushToken: d.pushToken, updatedAt: sql`now()` },
        })
        .returning();
      return toDevice(row!);
    });
  }

  async deleteDevice(userId: string, deviceId: string): Promise<void> {
    await this.db.delete(devices).where(and(eq(devices.userId, userId), eq(devices.deviceId, deviceId)));
  }

  async listDevices(userId: string): Promise<Device[]> {
    if (!/^[0-9a-f-]{36}$/i.test(userId)) return [];
    const rows = await this.db
      .select()
      .from(devices)
      .where(eq(devices.userId, userId))
      .orderBy(asc(devices.deviceId));
    return rows.map(toDevice);
  }
}

function toUser(r: typeof users.$inferSelect): User {
  return { id: r.id, email: r.email, displayName: r.displayName, createdAt: r.createdAt };
}

function toDevice(r: typeof devices.$inferSelect): Device {
  return {
    userId: r.userId,
    deviceId: r.deviceId,
    platform: r.platform as Platform,
    pushToken: r.pushToken,
    updatedAt: r.updatedAt,
  };
}
