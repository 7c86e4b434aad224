// Markdown for model output, safely: the text is never parsed as HTML. Blocks and inline
// marks are recognised in the plain text, elements are made with DOM calls, and every piece
// of the text goes in as a text node. Links work only for http(s) addresses; any other link
// is shown as the text it was written as. Code blocks get a small highlighter.
"use strict";

window.VaultGateMarkdown = (() => {
  // ---- the code highlighter: comments, strings, numbers and keywords ----

  const words = (text) => new Set(text.split(" "));
  const C_LIKE = "if else for while do switch case default break continue return goto sizeof "
    + "struct union enum typedef static const volatile extern void int long short char float "
    + "double unsigned signed bool true false null nullptr class public private protected "
    + "new delete this virtual override template typename namespace using try catch throw "
    + "final abstract interface extends implements package import func go defer chan map "
    + "range select type var fn let mut impl trait pub use mod crate self match loop where "
    + "as ref move async await dyn struct val fun when object companion";
  const LANGUAGES = {
    python: {
      keywords: words("and as assert async await break class continue def del elif else "
        + "except False finally for from global if import in is lambda None nonlocal not or "
        + "pass raise return True try while with yield match case self print"),
      line: "#", strings: ['"""', "'''", '"', "'"],
    },
    js: {
      keywords: words("break case catch class const continue debugger default delete do else "
        + "export extends finally for function if import in instanceof let new return super "
        + "switch this throw try typeof var void while with yield async await of null "
        + "undefined true false static get set interface type enum implements readonly as "
        + "from public private protected declare namespace"),
      line: "//", block: ["/*", "*/"], strings: ["`", '"', "'"],
    },
    clike: { keywords: words(C_LIKE), line: "//", block: ["/*", "*/"], strings: ['"', "'"] },
    sh: {
      keywords: words("if then else elif fi for while until do done case esac in function "
        + "return export local readonly set unset echo exit cd source true false"),
      line: "#", strings: ['"', "'"],
    },
    sql: {
      keywords: words("select from where and or not insert into values update set delete "
        + "create table index view drop alter add column primary key foreign references join "
        + "left right inner outer full on group by order having limit offset as distinct "
        + "union all case when then else end null is in like between exists default unique "
        + "begin commit rollback returning with"),
      line: "--", block: ["/*", "*/"], strings: ["'", '"'], caseless: true,
    },
    json: { keywords: words("true false null"), strings: ['"'] },
    config: { keywords: words("true false null yes no on off"), line: "#",
      strings: ['"', "'"] },
    css: { keywords: words("important"), block: ["/*", "*/"], strings: ['"', "'"] },
    markup: { keywords: new Set(), block: ["<!--", "-->"], strings: ['"', "'"] },
  };
  const ALIASES = {
    python: "python", py: "python", javascript: "js", js: "js", jsx: "js", mjs: "js",
    typescript: "js", ts: "js", tsx: "js", c: "clike", h: "clike", cpp: "clike",
    "c++": "clike", cc: "clike", java: "clike", cs: "clike", csharp: "clike", go: "clike",
    golang: "clike", rust: "clike", rs: "clike", kotlin: "clike", kt: "clike",
    swift: "clike", php: "clike", sh: "sh", bash: "sh", shell: "sh", zsh: "sh",
    console: "sh", sql: "sql", json: "json", yaml: "config", yml: "config", toml: "config",
    ini: "config", dockerfile: "sh", css: "css", scss: "css", html: "markup", xml: "markup",
    svg: "markup",
  };
  const patterns = new Map();

  const quote = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

  function stringPattern(delimiter) {
    const d = quote(delimiter);
    if (delimiter.length === 3 || delimiter === "`") return `${d}[\\s\\S]*?(?:${d}|$)`;
    return `${d}(?:\\\\.|(?!${d})[^\\\\\\n])*(?:${d})?`;
  }

  function patternFor(name) {
    if (patterns.has(name)) return patterns.get(name);
    const lang = LANGUAGES[name];
    const parts = [];
    if (lang.block) parts.push(`(${quote(lang.block[0])}[\\s\\S]*?(?:${quote(lang.block[1])}|$))`);
    else parts.push("(\\b\\B)");
    parts.push(lang.line ? `(${quote(lang.line)}[^\\n]*)` : "(\\b\\B)");
    parts.push(`(${lang.strings.map(stringPattern).join("|")})`);
    parts.push("(\\b(?:0x[\\da-fA-F]+|\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)\\b)");
    parts.push("([A-Za-z_$][\\w$]*)");
    const pattern = new RegExp(parts.join("|"), "g");
    patterns.set(name, pattern);
    return pattern;
  }

  function span(kind, text) {
    const element = document.createElement("span");
    element.className = "tok-" + kind;
    element.textContent = text;
    return element;
  }

  function highlight(code, language) {
    const name = ALIASES[(language || "").toLowerCase()];
    const target = document.createElement("code");
    if (!name) {
      target.textContent = code;
      return target;
    }
    const lang = LANGUAGES[name];
    const pattern = patternFor(name);
    pattern.lastIndex = 0;
    let plain = "";
    let at = 0;
    for (let match = pattern.exec(code); match; match = pattern.exec(code)) {
      if (match[0] === "") { pattern.lastIndex += 1; continue; }
      plain += code.slice(at, match.index);
      at = match.index + match[0].length;
      let token = null;
      if (match[1] || match[2]) token = span("com", match[0]);
      else if (match[3]) token = span("str", match[0]);
      else if (match[4]) token = span("num", match[0]);
      else if (lang.keywords.has(lang.caseless ? match[0].toLowerCase() : match[0])) {
        token = span("kw", match[0]);
      }
      if (token) {
        target.append(plain, token);
        plain = "";
      } else {
        plain += match[0];
      }
    }
    target.append(plain + code.slice(at));
    return target;
  }

  // ---- inline marks ----

  const INLINE = new RegExp([
    "(`+)([^`][\\s\\S]*?)\\1(?!`)", // 1, 2: code
    "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*", // 3: strong
    "(?<![\\w])__(?=\\S)([\\s\\S]*?\\S)__(?![\\w])", // 4: strong
    "\\*(?=[^\\s*])([^*]*?[^\\s*])\\*", // 5: emphasis
    "(?<![\\w])_(?=[^\\s_])([^_]*?[^\\s_])_(?![\\w])", // 6: emphasis
    "~~(?=\\S)([\\s\\S]*?\\S)~~", // 7: deleted
    // 8, 9: [label](address "title")
    "\\[([^\\]\\n]+)\\]\\(\\s*<?([^\\s()<>]+(?:\\([^\\s()]*\\))?)>?"
      + "(?:\\s+\"[^\"]*\")?\\s*\\)",
    "<?(https?:\\/\\/[^\\s<>]*[^\\s<>.,;:!?'\")\\]])>?", // 10: bare address
  ].join("|"), "g");

  function safeHref(address) {
    try {
      const url = new URL(address);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function link(href, label) {
    const anchor = document.createElement("a");
    anchor.href = href;
    anchor.rel = "noopener noreferrer nofollow";
    anchor.target = "_blank";
    inline(label, anchor);
    return anchor;
  }

  function wrap(tag, text) {
    const element = document.createElement(tag);
    inline(text, element);
    return element;
  }

  function inlineMatch(match) {
    if (match[2] !== undefined) {
      const code = document.createElement("code");
      code.textContent = match[2].replace(/^ (.*) $/s, "$1");
      return code;
    }
    if (match[3] !== undefined || match[4] !== undefined) {
      return wrap("strong", match[3] ?? match[4]);
    }
    if (match[5] !== undefined || match[6] !== undefined) return wrap("em", match[5] ?? match[6]);
    if (match[7] !== undefined) return wrap("del", match[7]);
    if (match[8] !== undefined) {
      const href = safeHref(match[9]);
      return href ? link(href, match[8]) : document.createTextNode(match[0]);
    }
    const href = safeHref(match[10]);
    return href ? link(href, match[10]) : document.createTextNode(match[0]);
  }

  function inline(text, parent) {
    const lines = text.split("\n");
    lines.forEach((line, index) => {
      if (index) parent.append(document.createElement("br"));
      let at = 0;
      // Marks nest by recursion, so each call needs its own copy of the pattern's position.
      const pattern = new RegExp(INLINE.source, "g");
      for (let match = pattern.exec(line); match; match = pattern.exec(line)) {
        parent.append(line.slice(at, match.index), inlineMatch(match));
        at = match.index + match[0].length;
      }
      parent.append(line.slice(at));
    });
  }

  // ---- blocks ----

  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
  const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
  const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
  const QUOTE = /^ {0,3}> ?(.*)$/;
  const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

  function startsBlock(line, next) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
      || ITEM.test(line) || (line.includes("|") && next !== undefined && TABLE_RULE.test(next));
  }

  function codeBlock(lines, at) {
    const [, fence, language] = lines[at].match(FENCE);
    const body = [];
    let index = at + 1;
    while (index < lines.length) {
      const closing = lines[index].trim();
      if (closing.startsWith(fence) && closing.replaceAll(fence[0], "") === "") {
        index += 1;
        break;
      }
      body.push(lines[index]);
      index += 1;
    }
    const code = body.join("\n");
    const frame = document.createElement("div");
    frame.className = "md-code";
    const bar = document.createElement("div");
    bar.className = "md-code-bar";
    const label = document.createElement("span");
    label.textContent = language || "text";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy small";
    copy.dataset.copy = code;
    copy.textContent = "Copy";
    bar.append(label, copy);
    const pre = document.createElement("pre");
    pre.tabIndex = 0;
    pre.append(highlight(code, language));
    frame.append(bar, pre);
    return [frame, index];
  }

  function cells(line) {
    const trimmed = line.trim().replace(/^\|/, "").replace(/\|$/, "");
    return trimmed.split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll("\\|", "|"));
  }

  function table(lines, at) {
    const frame = document.createElement("div");
    frame.className = "table-wrap md-table";
    const element = document.createElement("table");
    const head = element.createTHead().insertRow();
    for (const cell of cells(lines[at])) {
      const th = document.createElement("th");
      inline(cell, th);
      head.append(th);
    }
    const body = element.createTBody();
    let index = at + 2;
    while (index < lines.length && lines[index].includes("|") && lines[index].trim()) {
      const row = body.insertRow();
      for (const cell of cells(lines[index])) inline(cell, row.insertCell());
      index += 1;
    }
    frame.append(element);
    return [frame, index];
  }

  function list(lines, at) {
    const first = lines[at].match(ITEM);
    const ordered = /\d/.test(first[2]);
    const element = document.createElement(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) element.start = parseInt(first[2], 10);
    let index = at;
    while (index < lines.length) {
      const match = lines[index].match(ITEM);
      if (!match || /\d/.test(match[2]) !== ordered) break;
      const indent = match[1].length + match[2].length + 1;
      const body = [match[3]];
      index += 1;
      // The item goes on over indented lines, and over blank lines followed by them.
      while (index < lines.length) {
        const line = lines[index];
        const blankThenIndented = !line.trim() && index + 1 < lines.length
          && /^\s{2,}\S/.test(lines[index + 1]);
        if (/^\s{2,}\S/.test(line) || blankThenIndented) {
          body.push(line.slice(Math.min(indent, line.search(/\S|$/))));
          index += 1;
        } else if (line.trim() && !startsBlock(line) && !ITEM.test(line)) {
          body.push(line); // a lazy continuation of the item's paragraph
          index += 1;
        } else {
          break;
        }
      }
      const item = document.createElement("li");
      item.append(blocks(body.join("\n")));
      element.append(item);
      if (index < lines.length && !lines[index].trim() && ITEM.test(lines[index + 1] || "")) {
        index += 1;
      }
    }
    return [element, index];
  }

  function blocks(text) {
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    const fragment = document.createDocumentFragment();
    let index = 0;
    while (index < lines.length) {
      const line = lines[index];
      let made;
      if (!line.trim()) {
        index += 1;
        continue;
      } else if (FENCE.test(line)) {
        [made, index] = codeBlock(lines, index);
      } else if (HEADING.test(line)) {
        const [, marks, title] = line.match(HEADING);
        made = wrap(`h${Math.min(marks.length + 2, 6)}`, title);
        index += 1;
      } else if (RULE.test(line)) {
        made = document.createElement("hr");
        index += 1;
      } else if (QUOTE.test(line)) {
        const quoted = [];
        while (index < lines.length && QUOTE.test(lines[index])) {
          quoted.push(lines[index].match(QUOTE)[1]);
          index += 1;
        }
        made = document.createElement("blockquote");
        made.append(blocks(quoted.join("\n")));
      } else if (ITEM.test(line)) {
        [made, index] = list(lines, index);
      } else if (line.includes("|") && TABLE_RULE.test(lines[index + 1] || "")) {
        [made, index] = table(lines, index);
      } else {
        const paragraph = [line];
        index += 1;
        while (index < lines.length && lines[index].trim()
          && !startsBlock(lines[index], lines[index + 1])) {
          paragraph.push(lines[index]);
          index += 1;
        }
        made = document.createElement("p");
        inline(paragraph.join("\n"), made);
      }
      fragment.append(made);
    }
    return fragment;
  }

  function render(text) {
    return blocks(String(text || ""));
  }

  function renderInto(element, text) {
    element.replaceChildren(render(text));
    element.classList.add("md");
  }

  // Server-rendered turns arrive as escaped plain text; turn them into formatted text.
  for (const element of document.querySelectorAll("[data-markdown]")) {
    renderInto(element, element.textContent);
  }
  // Code samples on server-rendered pages (the docs) get the same highlighting.
  for (const pre of document.querySelectorAll("pre[data-highlight]")) {
    pre.replaceChildren(highlight(pre.textContent, pre.dataset.highlight));
  }

  return { render, renderInto, highlight };
})();
