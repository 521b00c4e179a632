/**
 * Kubernetes manifests per service (deploy/k8s/base/<svc>/), written by `pnpm k8s:write` and by
 * `pnpm new-service`. One source for every service keeps the invariants in one place: native gRPC
 * probes, non-root read-only containers, requests and limits, a drain that fits in the grace period,
 * a headless Service so clients balance over pods, a PodDisruptionBudget, an autoscaler, and a
 * migration Job for each service that owns a database.
 */
import { stringify } from "yaml";
import type { ImageSpec } from "./dockerfile.ts";
import { CONTAINER_MEMORY_MIB } from "./node-flags.ts";

export interface ServiceManifest {
  /** spec.database: owns a PostgreSQL database (DATABASE_URL from the secret, a migration Job). */
  spec: ImageSpec;
  /** Extra environment: downstream targets (dns:///svc:port resolves every pod of a headless Service). */
  env: Record<string, string>;
  /** Keys of the dispatch-secrets Secret this service reads, by variable ("key?": optional). */
  secrets: Record<string, string>;
}

/** SHUTDOWN_GRACE_MS (10 s) + the preStop pause (5 s) + margin: the kubelet never kills a draining pod. */
export const TERMINATION_GRACE_SECONDS = 30;
const PRESTOP_SECONDS = 5;

const labels = (service: string) => ({
  "app.kubernetes.io/name": service,
  "app.kubernetes.io/component": service === "gateway" ? "edge" : "backend",
});

function grpcPort(spec: ImageSpec): number {
  return Number(spec.env.INTERNAL_PORT ?? spec.env.PORT);
}

function podSecurity() {
  return {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    fsGroup: 65532,
    seccompProfile: { type: "RuntimeDefault" },
  };
}

function containerSecurity() {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  };
}

function envList(m: ServiceManifest) {
  const plain = Object.entries(m.env).map(([name, value]) => ({ name, value }));
  // "key?" marks a key the service can do without (it has a sound default).
  const secret = Object.entries(m.secrets).map(([name, key]) => ({
    name,
    valueFrom: {
      secretKeyRef: {
        name: "dispatch-secrets",
        key: key.replace(/\?$/, ""),
        ...(key.endsWith("?") ? { optional: true } : {}),
      },
    },
  }));
  return [...plain, ...secret];
}

export function deployment(m: ServiceManifest) {
  const { service } = m.spec;
  const port = grpcPort(m.spec);
  const ports = Object.entries(m.spec.env)
    .filter(([k]) => k.endsWith("PORT"))
    .map(([k, v]) => ({
      name: k === "ADMIN_PORT" ? "admin" : k === "INTERNAL_PORT" || service !== "gateway" ? "grpc" : "http",
      containerPort: Number(v),
      protocol: "TCP",
    }));
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: service, labels: labels(service) },
    spec: {
      replicas: 1,
      revisionHistoryLimit: 5,
      selector: { matchLabels: { "app.kubernetes.io/name": service } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: labels(service) },
        spec: {
          terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          containers: [
            {
              name: service,
              image: `dispatch/${service}`,
              imagePullPolicy: "IfNotPresent",
              ports,
              env: [
                ...(m.spec.database ? [{ name: "MIGRATIONS", value: "wait" }] : []),
                { name: "SHUTDOWN_GRACE_MS", value: "10000" },
                ...envList(m),
              ],
              resources: {
                requests: { cpu: "100m", memory: "96Mi" },
                limits: { cpu: "1", memory: `${CONTAINER_MEMORY_MIB}Mi` },
              },
              // Native gRPC probes against grpc.health.v1 (Kubernetes >= 1.27).
              startupProbe: { grpc: { port }, periodSeconds: 2, failureThreshold: 60 },
              readinessProbe: { grpc: { port }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { grpc: { port }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 },
              // Let endpoints drop the pod before it starts draining (GOAWAY) on SIGTERM.
              lifecycle: { preStop: { sleep: { seconds: PRESTOP_SECONDS } } },
              securityContext: containerSecurity(),
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
        },
      },
    },
  };
}

/** Headless: DNS returns every ready pod, and the client balances its long-lived HTTP/2 connections over them. */
export function headlessService(m: ServiceManifest) {
  const { service } = m.spec;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: service, labels: labels(service) },
    spec: {
      clusterIP: "None",
      selector: { "app.kubernetes.io/name": service },
      ports: [
        { name: "grpc", port: grpcPort(m.spec), targetPort: "grpc", appProtocol: "kubernetes.io/h2c" },
        { name: "admin", port: Number(m.spec.env.ADMIN_PORT), targetPort: "admin" },
      ],
    },
  };
}

export function disruptionBudget(m: ServiceManifest) {
  const { service } = m.spec;
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: service, labels: labels(service) },
    spec: { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": service } } },
  };
}

export function autoscaler(m: ServiceManifest) {
  const { service } = m.spec;
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name: service, labels: labels(service) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: service },
      minReplicas: 1,
      maxReplicas: 6,
      metrics: [
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
        },
      ],
    },
  };
}

export function migrationJob(m: ServiceManifest) {
  const { service } = m.spec;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: `${service}-migrate`,
      labels: { ...labels(service), "app.kubernetes.io/component": "migration" },
    },
    spec: {
      backoffLimit: 6,
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels: { ...labels(service), "app.kubernetes.io/component": "migration" } },
        spec: {
          restartPolicy: "OnFailure",
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          containers: [
            {
              name: "migrate",
              image: `dispatch/${service}`,
              imagePullPolicy: "IfNotPresent",
              // The image's entrypoint is `node <NODE_FLAGS> /app/dist/main.mjs`; `migrate` applies migrations and exits.
              args: ["migrate"],
              env: [
                {
                  name: "DATABASE_URL",
                  valueFrom: { secretKeyRef: { name: "dispatch-secrets", key: m.secrets.DATABASE_URL! } },
                },
              ],
              resources: {
                requests: { cpu: "50m", memory: "64Mi" },
                // The same image and node flags as the service: the same memory limit (see node-flags.ts).
                limits: { cpu: "500m", memory: `${CONTAINER_MEMORY_MIB}Mi` },
              },
              securityContext: containerSecurity(),
            },
          ],
        },
      },
    },
  };
}

/** The gateway's public door: a ClusterIP Service on its HTTP port, behind an Ingress. */
export function edge(m: ServiceManifest) {
  const { service } = m.spec;
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `${service}-edge`, labels: labels(service) },
      spec: {
        type: "ClusterIP",
        selector: { "app.kubernetes.io/name": service },
        ports: [{ name: "http", port: 80, targetPort: "http" }],
      },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: service, labels: labels(service) },
      spec: {
        ingressClassName: "nginx",
        rules: [
          {
            host: "api.dispatch.local",
            http: {
              paths: [
                {
                  path: "/",
                  pathType: "Prefix",
                  backend: { service: { name: `${service}-edge`, port: { name: "http" } } },
                },
              ],
            },
          },
        ],
      },
    },
  ];
}

/** deploy/k8s/base/<svc>/: file name -> YAML text. */
export function serviceFiles(m: ServiceManifest): Record<string, string> {
  const files: Record<string, unknown> = {
    "deployment.yaml": deployment(m),
    "service.yaml": headlessService(m),
    "pdb.yaml": disruptionBudget(m),
    "hpa.yaml": autoscaler(m),
  };
  if (m.spec.database) files["migrate-job.yaml"] = migrationJob(m);
  if (m.spec.service === "gateway") {
    const [svc, ingress] = edge(m);
    files["edge-service.yaml"] = svc;
    files["ingress.yaml"] = ingress;
  }
  const out: Record<string, string> = {};
  const header = "# Generated by packages/build/src/k8s.ts (pnpm k8s:write); edit there, not here.\n";
  for (const [name, obj] of Object.entries(files)) out[name] = header + stringify(obj, { lineWidth: 0 });
  out["kustomization.yaml"] =
    header +
    stringify({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: Object.keys(files),
    });
  return out;
}

const db = (service: string) => ({ DATABASE_URL: `${service}-database-url` });

export function manifestFor(spec: ImageSpec): ServiceManifest {
  const s = spec.service;
  const known: Record<string, Omit<ServiceManifest, "spec">> = {
    identity: { env: {}, secrets: { ...db(s), JWT_PRIVATE_KEYS: "jwt-private-keys?" } },
    catalog: { env: {}, secrets: db(s) },
    orders: {
      env: {
        CATALOG_URL: "dns:///catalog:50052",
        EVENT_SUBSCRIBERS: "gateway=dns:///gateway:50050,notifications=dns:///notifications:50055",
      },
      secrets: db(s),
    },
    payments: {
      env: {
        EVENT_SUBSCRIBERS: "orders=dns:///orders:50053,notifications=dns:///notifications:50055",
        WEBHOOK_URL: "http://gateway-edge/webhooks/payments",
      },
      secrets: { ...db(s), WEBHOOK_SECRET: "webhook-secret" },
    },
    notifications: { env: { IDENTITY_URL: "dns:///identity:50051" }, secrets: db(s) },
    gateway: {
      env: {
        IDENTITY_URL: "dns:///identity:50051",
        CATALOG_URL: "dns:///catalog:50052",
        ORDERS_URL: "dns:///orders:50053",
        PAYMENTS_URL: "dns:///payments:50054",
      },
      // Without Redis the rate limits are per pod; with it they are shared.
      secrets: { WEBHOOK_SECRET: "webhook-secret", REDIS_URL: "redis-url?" },
    },
  };
  return { spec, ...(known[s] ?? { env: {}, secrets: spec.database ? db(s) : {} }) };
}
