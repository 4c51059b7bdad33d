// Every op module registers its ops in the op table when imported.
export * from "./eltwise.js";
