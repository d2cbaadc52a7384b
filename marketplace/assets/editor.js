// The IaC editor: an Application's values.yaml in CodeMirror 6, checked as you type against the
// Blueprint's configSchema (the server checks again on save and is authoritative), with a live
// diff against the committed file. Bundled by esbuild at set-up (`make assets`), never a CDN.
import { EditorView, basicSetup } from "codemirror";
import { yaml } from "@codemirror/lang-yaml";
import { linter, lintGutter } from "@codemirror/lint";
import { unifiedMergeView } from "@codemirror/merge";
import { Validator } from "@cfworker/json-schema";
import { parseDocument, isMap, isSeq, isScalar, isPair } from "yaml";

const LEAF_KEYWORDS = new Set(["properties", "items", "allOf", "anyOf", "oneOf", "$ref", "additionalProperties"]);

function readJSON(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

// The source range of the value at a JSON pointer ("#/persistence/size"), else the whole doc.
function rangeOf(doc, pointer, length) {
  const parts = pointer.replace(/^#\/?/, "").split("/").filter(Boolean)
    .map((p) => decodeURIComponent(p.replace(/~1/g, "/").replace(/~0/g, "~")));
  let node = doc.contents;
  let found = node && node.range ? node.range : null;
  for (const part of parts) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === part);
      if (!pair) break;
      found = pair.key.range || found;
      node = pair.value;
      if (node && node.range) found = [found[0], node.range[1]];
    } else if (isSeq(node)) {
      node = node.items[Number(part)];
      if (node && node.range) found = node.range;
    } else break;
  }
  const from = found ? Math.min(found[0], length) : 0;
  const to = found ? Math.min(Math.max(found[1], from + 1), length) : Math.min(1, length);
  return { from, to };
}

export function problems(text, validator) {
  const doc = parseDocument(text, { prettyErrors: false });
  const out = [];
  for (const err of doc.errors) {
    const [from, to] = err.pos || [0, 1];
    out.push({ from, to: Math.max(to, from + 1), severity: "error", message: `YAML: ${err.message.split("\n")[0]}` });
  }
  if (out.length) return out;
  const value = doc.toJS() ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    return [{ from: 0, to: Math.max(1, Math.min(text.length, 1)), severity: "error", message: "values.yaml must hold a mapping." }];
  }
  const result = validator.validate(value);
  if (result.valid) return out;
  for (const err of result.errors) {
    if (LEAF_KEYWORDS.has(err.keyword)) continue;
    const where = err.instanceLocation.replace(/^#\/?/, "").replace(/\//g, ".") || "values";
    const { from, to } = rangeOf(doc, err.instanceLocation, text.length);
    out.push({ from, to, severity: "error", message: `${where}: ${err.error}` });
  }
  return out;
}

function mount(root) {
  const textarea = root.querySelector("textarea[name=values_yaml]");
  const schema = readJSON("config-schema") || { type: "object" };
  const committed = readJSON("committed-values") ?? "";
  const status = root.querySelector("[data-editor-status]");
  const diffStat = root.querySelector("[data-editor-diffstat]");
  const validator = new Validator(schema, "2020-12", false);

  const report = (view) => {
    const text = view.state.doc.toString();
    const found = problems(text, validator);
    status.textContent = found.length
      ? `${found.length} problem${found.length === 1 ? "" : "s"}: ${found.map((p) => p.message).join("; ")}`
      : "Valid against the Blueprint's schema.";
    status.dataset.valid = found.length ? "false" : "true";
    const before = committed.split("\n");
    const after = text.split("\n");
    const changed = after.filter((line, i) => before[i] !== line).length + Math.max(0, before.length - after.length);
    diffStat.textContent = text === committed ? "No change from the committed file." : `${changed} line${changed === 1 ? " differs" : "s differ"} from the committed file.`;
    return found;
  };

  const host = document.createElement("div");
  host.className = "code-editor";
  textarea.hidden = true;
  textarea.after(host);
  const view = new EditorView({
    parent: host,
    doc: textarea.value,
    extensions: [
      basicSetup,
      EditorView.cspNonce.of(root.dataset.styleNonce || ""),
      yaml(),
      lintGutter(),
      linter((v) => problems(v.state.doc.toString(), validator), { delay: 150 }),
      unifiedMergeView({ original: committed, mergeControls: false, highlightChanges: true }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) {
          textarea.value = update.state.doc.toString();
          report(update.view);
        }
      }),
      EditorView.contentAttributes.of({ "aria-label": "values.yaml", "data-testid": "values-editor" }),
    ],
  });
  root.addEventListener("submit", () => { textarea.value = view.state.doc.toString(); });
  report(view);
  window.catalystEditor = view; // for the browser tests and the curious
}

document.querySelectorAll("[data-iac-editor]").forEach(mount);
