// Type declarations for bpmn-moddle 9 (ESM), the parts this project uses, written from its README and source
// (lib/simple.js, moddle-xml's Reader): the package ships none.
declare module "bpmn-moddle" {
  /** A model element: `$type` is its qualified type name ("bpmn:Process"); its properties are the schema's. */
  export interface ModdleElement {
    $type: string;
    /** Attributes of namespaces no registered package knows, by their qualified name as written. */
    $attrs?: Record<string, string>;
    $parent?: ModdleElement;
    id?: string;
  }

  export interface ModdleWarning {
    message: string;
    element?: ModdleElement;
    property?: string;
    value?: unknown;
    error?: Error;
  }

  /** What `fromXML` resolves to (bpmn-engine calls it the moddle context). */
  export interface ModdleContext {
    rootElement: ModdleElement;
    elementsById: Record<string, ModdleElement>;
    references: { element: ModdleElement; property: string; id: string }[];
    warnings: ModdleWarning[];
  }

  export interface ModdleOptions {
    /** Namespace URIs read as if they were bound to a registered package's prefix. */
    nsMap?: Record<string, string>;
    /** Keep the values of unknown attributes (default true). */
    lax?: boolean;
  }

  export default class BpmnModdle {
    /** `packages` are extension schemas by prefix, e.g. camunda-bpmn-moddle's resources/camunda.json. */
    constructor(packages?: Record<string, object>, options?: ModdleOptions);
    /** Parses a document (by default as `bpmn:Definitions`); rejects when it is not one. */
    fromXML(xml: string, typeName?: string): Promise<ModdleContext>;
  }
}
