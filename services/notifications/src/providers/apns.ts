import http2 from "node:http2";
import { importPKCS8, SignJWT } from "jose";
import type { DeliveryOutcome, DeviceTarget, PushMessage, PushProvider } from "../domain/push.ts";

/**
 * Apple Push Notification service over one long-lived HTTP/2 connection (reopened when it closes),
 * token-based auth: an ES256 JWT (kid = key id, iss = team id) reused for 50 minutes, as Apple asks.
 */
export class ApnsProvider implements PushProvider {
  private session: http2.ClientHttp2Session | undefined;
  private jwt: { value: string; issuedAt: number } | undefined;

  constructor(
    private readonly opts: {
      baseUrl: string;
      teamId: string;
      keyId: string;
      privateKeyPem: string;
      topic: string;
      timeoutMs?: number;
    },
  ) {}

  async send(devices: DeviceTarget[], message: PushMessage): Promise<DeliveryOutcome[]> {
    let auth: string;
    try {
      auth = await this.token();
    } catch (err) {
      return devices.map(() => ({
        kind: "transient" as const,
        error: `apns key: ${(err as Error).message}`,
      }));
    }
    const payload = JSON.stringify({
      aps: { alert: { title: message.title, body: message.body }, sound: "default" },
      ...message.data,
    });
    return Promise.all(devices.map((d) => this.sendOne(d.pushToken, payload, auth)));
  }

  async close(): Promise<void> {
    this.session?.close();
    this.session = undefined;
  }

  private connection(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const s = http2.connect(this.opts.baseUrl);
      s.on("error", () => {});
      s.on("close", () => {
        if (this.session === s) this.session = undefined;
      });
      s.unref();
      this.session = s;
    }
    return this.session;
  }

  private sendOne(token: string, payload: string, auth: string): Promise<DeliveryOutcome> {
    return new Promise((resolve) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = this.connection().request({
          ":method": "POST",
          ":path": `/3/device/${token}`,
          authorization: `bearer ${auth}`,
          "apns-topic": this.opts.topic,
          "apns-push-type": "alert",
          "apns-priority": "10",
          "content-type": "application/json",
        });
      } catch (err) {
        resolve({ kind: "transient", error: `apns: ${(err as Error).message}` });
        return;
      }
      req.setTimeout(this.opts.timeoutMs ?? 10_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
      let status = 0;
      let body = "";
      req.on("response", (h) => {
        status = Number(h[":status"]);
      });
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("error", (err) => resolve({ kind: "transient", error: `apns: ${err.message}` }));
      req.on("close", () => {
        if (status === 200) return resolve({ kind: "delivered" });
        const reason = (() => {
          try {
            return (JSON.parse(body) as { reason?: string }).reason ?? "";
          } catch {
            return "";
          }
        })();
        if (status === 410 || reason === "BadDeviceToken" || reason === "Unregistered") {
          return resolve({ kind: "invalid_token", error: `apns ${status} ${reason}` });
        }
        if (reason === "ExpiredProviderToken") this.jwt = undefined;
        if (status === 0 || status === 429 || status >= 500 || reason === "ExpiredProviderToken") {
          return resolve({ kind: "transient", error: `apns ${status} ${reason}` });
        }
        resolve({ kind: "failed", error: `apns ${status} ${reason}` });
      });
      req.end(payload);
    });
  }

  private async token(): Promise<string> {
    if (this.jwt && Date.now() - this.jwt.issuedAt < 50 * 60_000) return this.jwt.value;
    const issuedAt = Date.now();
    const value = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: this.opts.keyId })
      .setIssuer(this.opts.teamId)
      .setIssuedAt(Math.floor(issuedAt / 1000))
      .sign(await importPKCS8(this.opts.privateKeyPem, "ES256"));
    this.jwt = { value, issuedAt };
    return value;
  }
}
