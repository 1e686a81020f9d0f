// Render TeX to HTML with KaTeX, one JSON request per line on stdin, one JSON answer per line on stdout.
// Used by katex_prerender.py at documentation build time; nothing here runs in the reader's browser.
//
//   request: {"tex": "...", "display": true|false, "macros": {...}}
//   answer:  {"html": "..."}  or  {"error": "KaTeX parse error: ..."}
"use strict";

const path = require("path");
const readline = require("readline");

const katex = require(path.resolve(process.argv[2]));

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  let answer;
  try {
    const req = JSON.parse(line);
    answer = {
      html: katex.renderToString(req.tex, {
        displayMode: Boolean(req.display),
        throwOnError: true, // a formula KaTeX cannot parse fails the build instead of showing red TeX
        strict: "ignore",
        trust: false,
        output: "htmlAndMathml", // MathML for screen readers, HTML for the eye
        macros: Object.assign({}, req.macros || {}),
      }),
    };
  } catch (err) {
    answer = { error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
