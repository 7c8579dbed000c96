import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "data/**", "test/engine/**", "public/vendor/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2024, sourceType: "module" },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    // Tests and benchmarks read broker replies through the loosely typed `call` of test/helpers.ts and poke at
    // answers they check field by field; production code has no `any` (a needed one says why on its line).
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  // One direction of imports (docs/architecture.md): the kernel (domain/, lib/) and the event store (stores/)
  // import no feature; a feature (view/, engine/, gateway/) imports no Moleculer service and no other feature,
  // except the gateway, which shows the view's changes (view/ types); only services/ and apps/ wire them together.
  ...[
    [["domain/**/*.ts", "lib/**/*.ts", "stores/**/*.ts"], ["services", "mixins", "view", "engine", "gateway", "apps"]],
    [["view/**/*.ts"], ["services", "mixins", "engine", "gateway", "apps"]],
    [["engine/**/*.ts"], ["services", "mixins", "view", "gateway", "apps"]],
    [["gateway/**/*.ts"], ["services", "mixins", "engine", "apps"]],
  ].map(([files, forbidden]) => ({
    files,
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: forbidden.map((folder) => `**/${folder}/**`), message: "imports go one way: see docs/architecture.md" }] }],
    },
  })),
  // No platform code imports a process application: a node loads one by name through the catalogue
  // (services/index.ts, a dynamic import(), which this rule does not see and which is the only such place) or by path.
  {
    files: ["services/**/*.ts", "mixins/**/*.ts", "server.ts", "moleculer.config.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: ["**/apps/**"], message: "the platform does not import process applications: see docs/architecture.md" }] }],
    },
  },
  // A process application (apps/) shares with the platform only its public contract and what an application
  // embeds (docs/architecture.md, "Process applications"): domain/ (the actions' commands and events, and the
  // helpers that build an application's commands) but not its deciders' machinery, engine/ and the engine
  // connector's service, the authentication and the OpenAPI kit of gateway/, stores/database.ts, lib/. Never the
  // platform's other services, its mixins, its view, its event store or the rest of its gateway.
  {
    files: ["apps/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: [
                "**/services/**",
                "!**/services/engine-connector.service.ts",
                "**/mixins/**",
                "**/view/**",
                "**/stores/**",
                "!**/stores/database.ts",
                "**/gateway/**",
                "!**/gateway/gateway-security.ts",
                "!**/gateway/openapi.ts",
                "!**/gateway/route-table.ts",
                "**/domain/decider.ts",
                "**/domain/upcasters.ts",
                "**/migrations/**",
                "!./migrations/**",
                "**/server.ts",
                "**/moleculer.config.ts",
              ],
              message: "a process application uses the platform's public actions and authentication only: see docs/architecture.md",
            },
          ],
        },
      ],
    },
  },
  {
    // lib/actions.ts, the map of the actions called by name, names the types of the features' handlers (the view's
    // queries, the gateway's params): with `import type` only, erased at run time, so every layer may import it.
    files: ["lib/actions.ts"],
    rules: {
      "no-restricted-imports": "off",
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["**/services/**", "**/mixins/**", "**/apps/**"], message: "imports go one way: see docs/architecture.md" },
            { group: ["**/view/**", "**/engine/**", "**/gateway/**"], allowTypeImports: true, message: "lib/actions.ts imports the features' types only (import type)" },
          ],
        },
      ],
    },
  },
  {
    files: ["lib/**/*.mjs"],
    languageOptions: { globals: { process: "readonly", globalThis: "readonly" } },
  },
  {
    // Browser modules: tsc checks their names against the DOM library (tsconfig.browser.json), no list needed here.
    files: ["public/**/*.js", "apps/approval/forms/**/*.js"],
    rules: { "no-undef": "off" },
  },
);
