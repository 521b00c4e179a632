import { importPKCS8, SignJWT } from "jose";
import type { DeliveryOutcome, DeviceTarget, PushMessage, PushProvider } from "../domain/push.ts";

/** The fields of a Google service-account key file that FCM needs. */
export interface ServiceAccount {
  client_email: string;
  private_key: string;
  token_uri: string;
}

/** FCM's per-request limit on how many messages one multicast may address. */
export const FCM_BATCH = 500;

/**
 * Firebase Cloud Messaging, HTTP v1 API. Authenticates with an OAuth2 access token obtained from a
 * service-account JWT (RS256) and cached until shortly before it expires. Devices are sent in batches
 * of at most 500, each message its own `messages:send` request over pooled keep-alive connections.
 */
export class FcmProvider implements PushProvider {
  private token: { value: string; expiresAt: number } | undefined;

  constructor(
    private readonly opts: {
      baseUrl: string;
      projectId: string;
      account: ServiceAccount;
      timeoutMs?: number;
    },
  ) {}

  async send(devices: DeviceTarget[], message: PushMessage): Promise<DeliveryOutcome[]> {
    const out: DeliveryOutcome[] = [];
    for (let i = 0; i < devices.length; i += FCM_BATCH) {
      const batch = devices.slice(i, i + FCM_BATCH);
      let auth: string;
      try {
        auth = await this.accessToken();
      } catch (err) {
        out.push(
          ...batch.map(() => ({ kind: "transient" as const, error: `oauth: ${(err as Error).message}` })),
        );
        continue;
      }
      out.push(...(await Promise.all(batch.map((d) => this.sendOne(d, message, auth)))));
    }
    return out;
  }

  private async sendOne(device: DeviceTarget, message: PushMessage, auth: string): Promise<DeliveryOutcome> {
    try {
      const res = await fetch(`${this.opts.baseUrl}/v1/projects/${this.opts.projectId}/messages:send`, {
        method: "POST",
        headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
        body: JSON.stringify({
          message: {
            token: device.pushToken,
            notification: { title: message.title, body: message.body },
            data: message.data,
          },
        }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
      if (res.ok) return { kind: "delivered" };
      const text = await res.text();
      if (
        res.status === 404 ||
        (res.status === 400 && /UNREGISTERED|registration-token|INVALID_ARGUMENT/.test(text))
      ) {
        return { kind: "invalid_token", error: `fcm ${res.status}` };
      }
      if (res.status === 401) this.token = undefined;
      if (res.status === 429 || res.status >= 500 || res.status === 401)
        return { kind: "transient", error: `fcm ${res.status}` };
      return { kind: "failed", error: `fcm ${res.status}: ${text.slice(0, 200)}` };
    } catch (err) {
      return { kind: "transient", error: `fcm: ${(err as Error).message}` };
    }
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 60_000) return this.token.value;
    const a = this.opts.account;
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ scope: "https://www.googleapis.com/auth/firebase.messaging" })
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setIssuer(a.client_email)
      .setAudience(a.token_uri)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(await importPKCS8(a.private_key, "RS256"));
    const res = await fetch(a.token_uri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    this.token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
    return body.access_token;
  }
}
