// Reads what the start menu needs from a BPMN 2.0 document: per process, its candidate starters
// (`camunda:candidateStarterUsers/Groups`) and whether it may be started from a task list
// (`camunda:isStartableInTasklist`). Camunda 7's REST API has no endpoint for the starters, so the connector
// reads them from the deployed XML; the embedded engine reads the same attributes from its own files. Both the
// Camunda and the Operaton extension namespaces count, whatever prefix a document binds them to.
//
// A small namespace-aware scanner of start tags is enough here (attributes on <process> elements only), so
// this module needs no XML library. Pure: no I/O.

export const BPMN_MODEL_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL";
export const CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn";
export const OPERATON_NS = "http://operaton.org/schema/1.0/bpmn";

const EXTENSION_NAMESPACES = new Set([CAMUNDA_NS, OPERATON_NS]);

export interface BpmnProcessAttributes {
  id: string;
  name: string | null;
  candidateStarterUsers: string[];
  candidateStarterGroups: string[];
  /** Defaults to true, as in the engine. */
  startableInTasklist: boolean;
  versionTag: string | null;
}

const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (whole, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return ENTITIES[entity] ?? whole;
  });
}

const TAG = /<(\/?)([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
const ATTRIBUTE = /([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

function attributesOf(source: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const match of source.matchAll(ATTRIBUTE)) result.set(match[1]!, decodeEntities(match[2] ?? match[3] ?? ""));
  return result;
}

function split(name: string): [prefix: string, local: string] {
  const colon = name.indexOf(":");
  return colon < 0 ? ["", name] : [name.slice(0, colon), name.slice(colon + 1)];
}

/** A comma-separated list of names; expressions (`${…}`, `#{…}`) cannot be resolved outside the engine and are left out. */
export function nameList(value: string | undefined | null): string[] {
  if (!value) return [];
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "" && !name.includes("${") && !name.includes("#{"));
  return [...new Set(names)].sort();
}

/** The attributes of every executable or non-executable `<process>` in the document, in document order. */
export function readProcessAttributes(xml: string): BpmnProcessAttributes[] {
  // Comments, CDATA and processing instructions may contain anything that looks like a tag.
  const text = xml.replace(/<!--[\s\S]*?-->/g, "").replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, "").replace(/<\?[\s\S]*?\?>/g, "");
  const scopes: Map<string, string>[] = [new Map()];
  const processes: BpmnProcessAttributes[] = [];
  for (const match of text.matchAll(TAG)) {
    const [, closing, qualifiedName, attributeSource = "", selfClosing] = match;
    if (closing) {
      if (scopes.length > 1) scopes.pop();
      continue;
    }
    const attributes = attributesOf(attributeSource);
    const scope = new Map(scopes[scopes.length - 1]);
    for (const [name, value] of attributes) {
      if (name === "xmlns") scope.set("", value);
      else if (name.startsWith("xmlns:")) scope.set(name.slice(6), value);
    }
    const [prefix, local] = split(qualifiedName!);
    if (local === "process" && scope.get(prefix) === BPMN_MODEL_NS) {
      const extension = (wanted: string): string | undefined => {
        for (const [name, value] of attributes) {
          const [attributePrefix, attributeLocal] = split(name);
          if (attributeLocal === wanted && attributePrefix !== "" && EXTENSION_NAMESPACES.has(scope.get(attributePrefix) ?? "")) return value;
        }
        return undefined;
      };
      const startable = extension("isStartableInTasklist");
      processes.push({
        id: attributes.get("id") ?? "",
        name: attributes.get("name") ?? null,
        candidateStarterUsers: nameList(extension("candidateStarterUsers")),
        candidateStarterGroups: nameList(extension("candidateStarterGroups")),
        startableInTasklist: startable === undefined ? true : startable.trim().toLowerCase() !== "false",
        versionTag: extension("versionTag") ?? null,
      });
    }
    if (!selfClosing) scopes.push(scope);
  }
  return processes;
}

/** The attributes of the process with the given id (the definition key), or null. */
export function processAttributesOf(xml: string, processId: string): BpmnProcessAttributes | null {
  return readProcessAttributes(xml).find((process) => process.id === processId) ?? null;
}
