import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { services } from "@dispatch/build/src/dockerfile.ts";
import { TERMINATION_GRACE_SECONDS } from "@dispatch/build/src/k8s.ts";
import { NODE_FLAGS } from "@dispatch/build/src/node-flags.ts";
import { deployFiles } from "@dispatch/build/src/write-deploy.ts";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Job } from "kubernetes-models/batch/v1/Job";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** The services' own drain (SHUTDOWN_GRACE_MS default, packages/runtime/src/config.ts). */
const SHUTDOWN_GRACE_S = 10;

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
type Obj = any;
const models: Record<string, new (o: Obj) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/Ingress": Ingress,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "v1/Service": Service,
};

function render(overlay: string): Obj[] {
  const out = execFileSync("kubectl", ["kustomize", join(repo, "deploy/k8s/overlays", overlay)], {
    encoding: "utf8",
  });
  const objs: Obj[] = parseAllDocuments(out).map((d) => d.toJS());
  // kustomize folds long base64 values over lines; the API server's decoder skips the newlines.
  for (const o of objs) {
    if (o.kind === "Secret")
      for (const k of Object.keys(o.data ?? {})) o.data[k] = String(o.data[k]).replace(/\s+/g, "");
  }
  return objs;
}

const ours = (objs: Obj[], kind: string) =>
  objs.filter((o) => o.kind === kind && o.metadata.labels?.["app.kubernetes.io/part-of"] === "dispatch");

describe("deploy files", () => {
  it("are what packages/build writes from deploy/services.json (pnpm deploy:write)", () => {
    for (const [path, text] of Object.entries(deployFiles())) {
      expect(readFileSync(join(repo, path), "utf8"), `${path} is stale: run pnpm deploy:write`).toBe(text);
    }
  });
});

describe.each(["dev", "prod"])("kubectl kustomize deploy/k8s/overlays/%s", (overlay) => {
  const objs = render(overlay);

  it("renders only objects whose schema kubernetes-models accepts", () => {
    expect(objs.length).toBeGreaterThan(30);
    for (const o of objs) {
      const Model = models[`${o.apiVersion}/${o.kind}`];
      expect(Model, `no schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => new Model!(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
  });

  it("gives every service a Deployment with gRPC probes, limits, non-root read-only containers and a drain that fits", () => {
    const deployments = ours(objs, "Deployment");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(services.map((s) => s.service).sort());
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      const [c] = pod.containers;
      const spec = services.find((s) => s.service === d.metadata.name)!;
      const grpc = Number(spec.env.INTERNAL_PORT ?? spec.env.PORT);
      for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"])
        expect(c[probe]?.grpc?.port, `${d.metadata.name} ${probe}`).toBe(grpc);
      expect(c.resources.requests.cpu && c.resources.requests.memory).toBeTruthy();
      expect(c.resources.limits.cpu && c.resources.limits.memory).toBeTruthy();
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
      expect(pod.terminationGracePeriodSeconds).toBe(TERMINATION_GRACE_SECONDS);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + SHUTDOWN_GRACE_S);
      expect(c.image).toMatch(
        overlay === "prod" ? /^registry\.example\.com\/dispatch\/.+:1\.0\.0$/ : /^dispatch\/.+:dev$/,
      );
      if (overlay === "prod") expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    }
  });

  it("keeps V8's heap, as node reads the images' flags, to three quarters of every service container's memory limit", () => {
    // What the flags mean to V8 (old generation and semi-spaces), read from the node that runs the tests.
    const heapLimit = Number(
      execFileSync(
        process.execPath,
        [...NODE_FLAGS, "-p", "require('node:v8').getHeapStatistics().heap_size_limit"],
        { encoding: "utf8" },
      ),
    );
    const containers = [...ours(objs, "Deployment"), ...ours(objs, "Job")].flatMap((o) =>
      o.spec.template.spec.containers.map((c: Obj) => ({ name: `${o.kind}/${o.metadata.name}`, c })),
    );
    expect(containers.length).toBeGreaterThan(services.length);
    for (const { name, c } of containers) {
      const m = /^(\d+)Mi$/.exec(c.resources.limits.memory);
      expect(m, `${name}: limits.memory ${c.resources.limits.memory}`).not.toBeNull();
      const limit = Number(m![1]) * 2 ** 20;
      expect(
        heapLimit,
        `${name}: V8's heap limit against limits.memory ${c.resources.limits.memory}`,
      ).toBeLessThanOrEqual(limit * 0.75);
    }
  });

  it("puts each service behind a headless Service, and every gRPC target names one", () => {
    const headless = new Map(
      ours(objs, "Service")
        .filter((s) => s.spec.clusterIP === "None")
        .map((s) => [s.metadata.name, s.spec.ports.find((p: Obj) => p.name === "grpc").port]),
    );
    expect([...headless.keys()].sort()).toEqual(services.map((s) => s.service).sort());
    for (const d of ours(objs, "Deployment")) {
      for (const e of d.spec.template.spec.containers[0].env) {
        const targets =
          e.name === "EVENT_SUBSCRIBERS"
            ? e.value.split(",").map((p: string) => p.slice(p.indexOf("=") + 1))
            : /^[A-Z]+_URL$/.test(e.name) && e.value
              ? [e.value]
              : [];
        for (const t of targets) {
          if (t.startsWith("http")) continue;
          const m = /^dns:\/\/\/([a-z-]+):(\d+)$/.exec(t);
          expect(m, `${d.metadata.name} ${e.name}=${t}`).not.toBeNull();
          expect(headless.get(m![1]!), `${t} is not a headless Service port`).toBe(Number(m![2]));
        }
      }
    }
  });

  it("has a PodDisruptionBudget and an autoscaler per service, and a migration Job per database", () => {
    const names = services.map((s) => s.service).sort();
    expect(
      ours(objs, "PodDisruptionBudget")
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(names);
    const hpas = ours(objs, "HorizontalPodAutoscaler");
    expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(names);
    for (const h of hpas) expect(h.spec.minReplicas).toBeGreaterThanOrEqual(overlay === "prod" ? 2 : 1);
    const jobs = ours(objs, "Job");
    expect(jobs.map((j) => j.metadata.name).sort()).toEqual(
      services
        .filter((s) => s.database)
        .map((s) => `${s.service}-migrate`)
        .sort(),
    );
    for (const j of jobs) {
      const c = j.spec.template.spec.containers[0];
      expect(c.args).toEqual(["migrate"]);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      // The Deployment waits for the Job's migrations rather than racing it.
      const d = ours(objs, "Deployment").find((x) => `${x.metadata.name}-migrate` === j.metadata.name);
      expect(d.spec.template.spec.containers[0].env).toContainEqual({ name: "MIGRATIONS", value: "wait" });
    }
  });

  it("exposes only the gateway through an Ingress", () => {
    const ingresses = objs.filter((o) => o.kind === "Ingress");
    expect(ingresses).toHaveLength(1);
    const backend = ingresses[0].spec.rules[0].http.paths[0].backend.service.name;
    const svc = objs.find((o) => o.kind === "Service" && o.metadata.name === backend);
    expect(svc.spec.selector["app.kubernetes.io/name"]).toBe("gateway");
  });

  it("references its secrets and commits none with real values", () => {
    const secrets = objs.filter((o) => o.kind === "Secret");
    if (overlay === "prod") expect(secrets).toEqual([]);
    else {
      // dev: generated from development-only literals.
      expect(secrets).toHaveLength(1);
      const values = Object.values(secrets[0].data).map((v) => Buffer.from(v as string, "base64").toString());
      for (const v of values) expect(v).toMatch(/dispatch:dispatch@postgres|^dev-|^redis:\/\/redis:/);
    }
    for (const d of [...ours(objs, "Deployment"), ...ours(objs, "Job")]) {
      for (const e of d.spec.template.spec.containers[0].env) {
        if (/DATABASE_URL|SECRET|PRIVATE_KEY/.test(e.name)) {
          expect(e.value, `${d.metadata.name} ${e.name} must come from a Secret`).toBeUndefined();
          expect(e.valueFrom.secretKeyRef.name).toMatch(/^dispatch-secrets/);
        }
      }
    }
  });
});

describe("the dev overlay's PostgreSQL connections", () => {
  const objs = render("dev");

  it("fit the server's max_connections with every pod at its autoscaler's maximum, a rollout's extra pod and the migration Jobs", () => {
    const secret = objs.find((o) => o.kind === "Secret");
    const urls = Object.entries(secret.data as Record<string, string>)
      .filter(([key]) => key.endsWith("-database-url"))
      .map(([key, v]) => ({ service: key.replace(/-database-url$/, ""), url: new URL(atob(v)) }));
    expect(urls.map((u) => u.service).sort()).toEqual(
      services
        .filter((s) => s.database)
        .map((s) => s.service)
        .sort(),
    );
    const pg = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "postgres");
    const args: string[] = pg.spec.template.spec.containers[0].args ?? [];
    const setting = args.find((a) => a.startsWith("max_connections="));
    expect(setting, "postgres.yaml states max_connections").toBeDefined();
    // superuser_reserved_connections (3) are not the services'.
    const available = Number(setting!.split("=")[1]) - 3;
    let most = 0;
    for (const { service, url } of urls) {
      // Without max a pod opens its service's own pool sizes (10 and more): the budget needs it set.
      const max = Number(url.searchParams.get("max"));
      expect(max, `${service}-database-url has ?max=`).toBeGreaterThanOrEqual(2);
      const hpa = ours(objs, "HorizontalPodAutoscaler").find((h) => h.spec.scaleTargetRef.name === service);
      const deployment = ours(objs, "Deployment").find((d) => d.metadata.name === service);
      const surge = deployment.spec.strategy.rollingUpdate.maxSurge;
      expect(Number.isInteger(surge), `${service}: maxSurge as a pod count`).toBe(true);
      // The migration Job applies its migrations one statement after another: one connection.
      most += (hpa.spec.maxReplicas + surge) * max + 1;
    }
    expect(most).toBeLessThanOrEqual(available);
  });
});
