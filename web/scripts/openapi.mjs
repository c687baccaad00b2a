// The portal's API contract: every route the gateway serves, merged from the services' own OpenAPI
// documents (tests/contract/snapshots/openapi, kept equal to the code by the contract tests), then
// turned into TypeScript types for the typed client (src/api.ts).
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const snapshots = join(here, "..", "..", "tests", "contract", "snapshots", "openapi");
// What the gateway forwards to the outside world (services/gateway/petportal_gateway/domain/routing.py).
const PUBLIC = ["/api/", "/clinic/v1/", "/pims/v1/", "/webhooks/"];

const merged = { openapi: "3.1.0", info: { title: "Pet Portal", version: "1" }, paths: {}, components: { schemas: {} } };
for (const file of readdirSync(snapshots).sort()) {
  const doc = JSON.parse(readFileSync(join(snapshots, file), "utf8"));
  for (const [path, item] of Object.entries(doc.paths)) {
    if (PUBLIC.some((prefix) => path.startsWith(prefix))) merged.paths[path] = item;
  }
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    const known = merged.components.schemas[name];
    if (known && JSON.stringify(known) !== JSON.stringify(schema)) {
      throw new Error(`two services define the schema ${name} differently (${file})`);
    }
    merged.components.schemas[name] = schema;
  }
}
mkdirSync(join(here, "..", "src", "generated"), { recursive: true });
writeFileSync(join(here, "..", "src", "generated", "openapi.json"), JSON.stringify(merged, null, 1));
const ast = await openapiTS(merged);
writeFileSync(join(here, "..", "src", "generated", "api.d.ts"), astToString(ast));
console.log(`api: ${Object.keys(merged.paths).length} paths`);
