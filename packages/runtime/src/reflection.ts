import { type DescFile, type DescMessage, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  type ServerReflectionRequest,
  ServerReflection as ServerReflectionV1,
} from "@dispatch/gen/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as ServerReflectionV1Alpha } from "@dispatch/gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { ServiceRegistration } from "./handler.ts";

/** Every file and symbol reachable from the served services, indexed for reflection lookups. */
class DescriptorIndex {
  readonly files = new Map<string, DescFile>();
  readonly symbols = new Map<string, DescFile>();
  private readonly encoded = new Map<DescFile, Uint8Array>();

  constructor(services: readonly DescService[]) {
    for (const s of services) this.addFile(s.file);
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
    for (const m of file.messages) this.addMessage(m, file);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const x of file.extensions) this.symbols.set(x.typeName, file);
  }

  private addMessage(m: DescMessage, file: DescFile): void {
    this.symbols.set(m.typeName, file);
    for (const f of m.fields) this.symbols.set(`${m.typeName}.${f.name}`, file);
    for (const n of m.nestedMessages) this.addMessage(n, file);
    for (const e of m.nestedEnums) this.symbols.set(e.typeName, file);
    for (const x of m.nestedExtensions) this.symbols.set(x.typeName, file);
  }

  /** The file and everything it imports, transitively, serialized as FileDescriptorProtos. */
  withDependencies(file: DescFile): Uint8Array[] {
    const out: Uint8Array[] = [];
    const seen = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (seen.has(f)) return;
      seen.add(f);
      let bytes = this.encoded.get(f);
      if (!bytes) {
        bytes = toBinary(FileDescriptorProtoSchema, f.proto);
        this.encoded.set(f, bytes);
      }
      out.push(bytes);
      for (const d of f.dependencies) visit(d);
    };
    visit(file);
    return out;
  }
}

// v1 and v1alpha messages have the same fields; one implementation answers both.
function answer(index: DescriptorIndex, serviceNames: string[], req: ServerReflectionRequest) {
  const base = { validHost: req.host, originalRequest: req };
  const notFound = (what: string) => ({
    ...base,
    messageResponse: {
      case: "errorResponse" as const,
      value: { errorCode: 5, errorMessage: `${what} not found` },
    },
  });
  const files = (file: DescFile | undefined, what: string) =>
    file
      ? {
          ...base,
          messageResponse: {
            case: "fileDescriptorResponse" as const,
            value: { fileDescriptorProto: index.withDependencies(file) },
          },
        }
      : notFound(what);
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      return {
        ...base,
        messageResponse: {
          case: "listServicesResponse" as const,
          value: { service: serviceNames.map((name) => ({ name })) },
        },
      };
    case "fileByFilename":
      return files(index.files.get(r.value), `file ${r.value}`);
    case "fileContainingSymbol":
      return files(index.symbols.get(r.value), `symbol ${r.value}`);
    case "fileContainingExtension":
      return notFound(`extension ${r.value.containingType}/${r.value.extensionNumber}`);
    case "allExtensionNumbersOfType":
      return index.symbols.has(r.value)
        ? {
            ...base,
            messageResponse: {
              case: "allExtensionNumbersResponse" as const,
              value: { baseTypeName: r.value, extensionNumber: [] },
            },
          }
        : notFound(`type ${r.value}`);
    default:
      return {
        ...base,
        messageResponse: {
          case: "errorResponse" as const,
          value: { errorCode: 3, errorMessage: "empty request" },
        },
      };
  }
}

/** grpc.reflection v1 and v1alpha, so grpcurl and `buf curl --reflect` work without .proto files. */
export function reflectionServices(
  served: readonly DescService[],
): [ServiceRegistration<typeof ServerReflectionV1>, ServiceRegistration<typeof ServerReflectionV1Alpha>] {
  const all = [...served, ServerReflectionV1, ServerReflectionV1Alpha];
  const index = new DescriptorIndex(all);
  const names = all.map((s) => s.typeName);
  return [
    [
      ServerReflectionV1,
      {
        async *serverReflectionInfo(requests) {
          for await (const req of requests) yield answer(index, names, req);
        },
      },
    ],
    [
      ServerReflectionV1Alpha,
      {
        async *serverReflectionInfo(requests) {
          // biome-ignore lint/suspicious/noExplicitAny: v1alpha's request has v1's exact fields
          for await (const req of requests) yield answer(index, names, req as any) as any;
        },
      },
    ],
  ];
}
