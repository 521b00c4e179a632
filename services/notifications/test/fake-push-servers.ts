import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import { exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify } from "jose";

/**
 * Local stand-ins for Google's OAuth2 + FCM HTTP v1 endpoints and Apple's APNs, checking what the real
 * services check: the token exchange's signed assertion, bearer tokens, paths, headers and payloads.
 * Tokens starting with "dead" are unregistered; "busy" ones fail with 503 the first time.
 */
export async function startFakePush() {
  const google = await generateKeyPair("RS256", { extractable: true });
  const apple = await generateKeyPair("ES256", { extractable: true });
  const googlePublic = await importSPKI(await exportSPKI(google.publicKey), "RS256");
  const applePublic = await importSPKI(await exportSPKI(apple.publicKey), "ES256");
  const seen = {
    tokenExchanges: 0,
    fcm: [] as { token: string; title: string }[],
    apns: [] as { token: string; title: string }[],
    apnsSessions: 0,
    rejected: [] as string[],
  };
  const busyOnce = new Set<string>();
  const issued = new Set<string>();
  let fcmPort = 0;

  const fcm = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      if (req.url === "/token") {
        const assertion = new URLSearchParams(body).get("assertion") ?? "";
        try {
          const { payload } = await jwtVerify(assertion, googlePublic, {
            issuer: "push@dispatch.iam",
            audience: `http://127.0.0.1:${fcmPort}/token`,
          });
          if (payload.scope !== "https://www.googleapis.com/auth/firebase.messaging")
            throw new Error("scope");
        } catch {
          seen.rejected.push("assertion");
          return res.writeHead(400).end();
        }
        seen.tokenExchanges++;
        const token = `ya29.fake-${seen.tokenExchanges}`;
        issued.add(token);
        return res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ access_token: token, expires_in: 3600 }));
      }
      const bearer = req.headers.authorization?.replace(/^Bearer /, "") ?? "";
      if (req.url !== "/v1/projects/dispatch-test/messages:send" || !issued.has(bearer)) {
        seen.rejected.push(`fcm ${req.url}`);
        return res.writeHead(401).end();
      }
      const { message } = JSON.parse(body) as { message: { token: string; notification: { title: string } } };
      if (message.token.startsWith("dead")) {
        return res
          .writeHead(404)
          .end(JSON.stringify({ error: { status: "NOT_FOUND", details: [{ errorCode: "UNREGISTERED" }] } }));
      }
      if (message.token.startsWith("busy") && !busyOnce.has(message.token)) {
        busyOnce.add(message.token);
        return res.writeHead(503).end();
      }
      seen.fcm.push({ token: message.token, title: message.notification.title });
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ name: "projects/dispatch-test/messages/1" }));
    });
  });
  fcm.listen(0, "127.0.0.1");
  await once(fcm, "listening");
  fcmPort = (fcm.address() as { port: number }).port;

  const apns = http2.createServer();
  apns.on("session", () => seen.apnsSessions++);
  apns.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", async () => {
      const reply = (status: number, body?: unknown) => {
        stream.respond({ ":status": status, "content-type": "application/json" });
        stream.end(body ? JSON.stringify(body) : undefined);
      };
      try {
        const jwt = String(headers.authorization ?? "").replace(/^bearer /, "");
        const { protectedHeader } = await jwtVerify(jwt, applePublic, { issuer: "TEAM123456" });
        if (protectedHeader.kid !== "KEY1234567") throw new Error("kid");
      } catch {
        seen.rejected.push("apns auth");
        return reply(403, { reason: "InvalidProviderToken" });
      }
      const token = String(headers[":path"]).replace("/3/device/", "");
      if (headers["apns-topic"] !== "com.dispatch.app" || headers["apns-push-type"] !== "alert")
        return reply(400, { reason: "BadTopic" });
      const payload = JSON.parse(Buffer.concat(chunks).toString()) as { aps: { alert: { title: string } } };
      if (token.startsWith("dead")) return reply(410, { reason: "Unregistered" });
      if (token.startsWith("busy") && !busyOnce.has(token)) {
        busyOnce.add(token);
        return reply(503, { reason: "ServiceUnavailable" });
      }
      seen.apns.push({ token, title: payload.aps.alert.title });
      reply(200);
    });
  });
  apns.listen(0, "127.0.0.1");
  await once(apns, "listening");

  return {
    seen,
    fcm: {
      baseUrl: `http://127.0.0.1:${fcmPort}`,
      projectId: "dispatch-test",
      account: {
        client_email: "push@dispatch.iam",
        private_key: await exportPKCS8(google.privateKey),
        token_uri: `http://127.0.0.1:${fcmPort}/token`,
      },
    },
    apns: {
      baseUrl: `http://127.0.0.1:${(apns.address() as { port: number }).port}`,
      teamId: "TEAM123456",
      keyId: "KEY1234567",
      privateKeyPem: await exportPKCS8(apple.privateKey),
      topic: "com.dispatch.app",
    },
    close() {
      fcm.close();
      apns.close();
    },
  };
}
