// The playground: builds OpenAI requests, sends them with one of the user's keys (named by
// id; the key itself never reaches the browser), streams the answer in and shows its cost.
"use strict";

(() => {
  const root = document.getElementById("playground");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const els = {
    model: $("pg-model"), key: $("pg-key"), modeField: $("pg-mode-field"), mode: $("pg-mode"),
    chatSettings: $("pg-chat-settings"), imageSettings: $("pg-image-settings"),
    system: $("pg-system"), temperature: $("pg-temperature"), maxTokens: $("pg-max-tokens"),
    topP: $("pg-top-p"), stream: $("pg-stream"), size: $("pg-size"), quality: $("pg-quality"),
    log: $("pg-log"),
    stats: $("pg-stats"), compose: $("pg-compose"), message: $("pg-message"),
    send: $("pg-send"), stop: $("pg-stop"), clear: $("pg-clear"),
    exportJson: $("pg-export-json"), exportMd: $("pg-export-md"),
    lang: $("pg-lang"), copy: $("pg-copy"), snippet: $("pg-snippet"),
  };
  const csrf = root.dataset.csrf;
  const apiBase = root.dataset.apiBase;
  const turns = []; // {role, kind: "chat"|"image", content, images?, model?, stats?}
  let lastRequest = null;
  let controller = null;

  // ---- the selected model and mode ----

  function model() {
    const option = els.model.selectedOptions[0];
    return option ? JSON.parse(option.dataset.model) : null;
  }

  function mode() {
    const m = model();
    if (!m) return "chat";
    if (m.type === "image") return "image";
    if (m.type === "text") return "chat";
    return els.mode.value;
  }

  function imageSizes(m) {
    const sizes = Object.keys(m.images).map((k) => k.split("/")[0]);
    return [...new Set(sizes)];
  }

  // The qualities priced for a size; "" asks for the provider's default, priced as the
  // server prices it (the size's "standard" entry, else its plain entry).
  function imageQualities(m, size) {
    const named = Object.keys(m.images)
      .filter((k) => k.startsWith(size + "/")).map((k) => k.slice(size.length + 1));
    const hasDefault = (size + "/standard") in m.images || size in m.images;
    return [...(hasDefault ? [""] : []), ...named.filter((q) => q !== "standard" || !hasDefault)];
  }

  function syncQualities(m) {
    const current = els.quality.value;
    const options = imageQualities(m, els.size.value)
      .map((q) => new Option(q || "default", q));
    els.quality.replaceChildren(...options);
    if ([...els.quality.options].some((o) => o.value === current)) els.quality.value = current;
  }

  function syncModel() {
    const m = model();
    els.modeField.hidden = !m || m.type !== "hybrid";
    const isImage = mode() === "image";
    els.chatSettings.hidden = isImage;
    els.imageSettings.hidden = !isImage;
    if (m) {
      const current = els.size.value;
      els.size.replaceChildren(...imageSizes(m).map((size) => new Option(size, size)));
      if ([...els.size.options].some((o) => o.value === current)) els.size.value = current;
      syncQualities(m);
    }
    renderSnippet();
  }

  // ---- building requests ----

  function numberOf(input) {
    const raw = input.value.trim();
    return raw === "" ? null : Number(raw);
  }

  function chatHistory() {
    return turns
      .filter((t) => t.kind === "chat" && t.content)
      .map((t) => ({ role: t.role, content: t.content }));
  }

  function chatRequest(text) {
    const messages = [];
    const system = els.system.value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push(...chatHistory(), { role: "user", content: text });
    const body = { model: model().id, messages };
    const options = [["temperature", els.temperature], ["max_tokens", els.maxTokens],
      ["top_p", els.topP]];
    for (const [name, input] of options) {
      const value = numberOf(input);
      if (value !== null) body[name] = value;
    }
    if (els.stream.checked) {
      body.stream = true;
      body.stream_options = { include_usage: true };
    }
    return body;
  }

  function imageRequest(prompt) {
    const request = { model: model().id, prompt, n: 1, size: els.size.value };
    if (els.quality.value) request.quality = els.quality.value;
    request.response_format = "b64_json";
    return request;
  }

  function buildRequest(text) {
    return mode() === "image" ? imageRequest(text) : chatRequest(text);
  }

  // ---- money and numbers, exactly as the server computes them ----

  function formatUsd(micros) {
    const value = BigInt(micros);
    const whole = value / 1000000n;
    const fraction = (value % 1000000n).toString().padStart(6, "0").replace(/0+$/, "");
    return "$" + whole.toString() + (fraction ? "." + fraction : "");
  }

  function tokenCost(m, usage) {
    const prompt = BigInt(usage.prompt_tokens || 0);
    const details = usage.prompt_tokens_details || {};
    let cached = BigInt(details.cached_tokens > 0 ? details.cached_tokens : 0);
    if (cached > prompt) cached = prompt;
    const scaled = (prompt - cached) * BigInt(m.input) + cached * BigInt(m.cached)
      + BigInt(usage.completion_tokens || 0) * BigInt(m.output);
    return (scaled + 999999n) / 1000000n; // rounded up to a whole micro
  }

  function imagePrice(m, size, quality) {
    if (quality) return m.images[size + "/" + quality] ?? 0;
    return m.images[size + "/standard"] ?? m.images[size] ?? 0;
  }

  // ---- the conversation on screen ----

  function bubble(turn) {
    const item = document.createElement("article");
    item.className = "pg-turn pg-" + turn.role;
    const who = document.createElement("h2");
    who.className = "pg-who";
    who.textContent = turn.role === "user" ? "You" : (turn.model || "Assistant");
    const body = document.createElement("div");
    body.className = "pg-text";
    body.textContent = turn.content || "";
    item.append(who, body);
    els.log.querySelector(".pg-empty")?.remove();
    els.log.append(item);
    return { item, body };
  }

  function showImages(view, images) {
    for (const src of images) {
      const img = document.createElement("img");
      img.src = src;
      img.alt = "Generated image";
      img.className = "pg-image";
      view.item.append(img);
    }
  }

  function showError(view, message, { quiet = false } = {}) {
    const note = document.createElement("p");
    note.className = quiet ? "notice" : "notice error";
    note.setAttribute("role", quiet ? "status" : "alert");
    note.textContent = message;
    view.item.append(note);
  }

  function showStats(stats) {
    const parts = [`${stats.totalMs} ms`];
    if (stats.ttftMs !== null) parts.push(`first token ${stats.ttftMs} ms`);
    if (stats.usage) {
      parts.push(`${stats.usage.prompt_tokens} tokens in`,
        `${stats.usage.completion_tokens} tokens out`);
    }
    if (stats.images) parts.push(`${stats.images} image${stats.images > 1 ? "s" : ""}`);
    if (stats.costMicros !== null) parts.push(`cost ${formatUsd(stats.costMicros)}`);
    if (stats.requestId) parts.push(stats.requestId);
    els.stats.textContent = parts.join(" · ");
  }

  // ---- sending ----

  function setBusy(busy) {
    els.send.disabled = busy;
    els.stop.hidden = !busy;
    if (busy) els.stop.focus();
    else els.message.focus();
  }

  async function errorMessage(response) {
    const type = response.headers.get("content-type") || "";
    if (type.includes("application/json")) {
      const body = await response.json();
      return body.error ? body.error.message : `HTTP ${response.status}`;
    }
    if (response.redirected || response.status === 403) {
      return "Your session expired: reload the page and sign in again.";
    }
    return `HTTP ${response.status}`;
  }

  async function readStream(response, view, turn, timing) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let usage = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          if (timing.first === null) timing.first = performance.now();
          turn.content += delta;
          view.body.textContent = turn.content;
        }
      }
    }
    return usage;
  }

  async function post(path, request, signal) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ key_id: Number(els.key.value), request }),
      signal,
    });
    // A lapsed session is redirected to the sign-in page, which fetch follows.
    if (!response.ok || response.redirected) throw new Error(await errorMessage(response));
    return response;
  }

  async function sendChat(request, view, turn, timing) {
    const response = await post("/dashboard/playground/chat", request, controller.signal);
    const stats = { requestId: response.headers.get("x-request-id") };
    if ((response.headers.get("content-type") || "").includes("text/event-stream")) {
      stats.usage = await readStream(response, view, turn, timing);
    } else {
      const body = await response.json();
      timing.first = performance.now();
      turn.content = body.choices?.[0]?.message?.content || "";
      view.body.textContent = turn.content;
      stats.usage = body.usage;
    }
    stats.costMicros = stats.usage ? tokenCost(model(), stats.usage) : null;
    return stats;
  }

  async function sendImage(request, view, turn, timing) {
    const response = await post("/dashboard/playground/images", request, controller.signal);
    const stats = { requestId: response.headers.get("x-request-id") };
    const body = await response.json();
    timing.first = performance.now();
    turn.images = body.data.map((d) => (d.b64_json ? "data:image/png;base64," + d.b64_json
      : d.url));
    showImages(view, turn.images);
    stats.images = turn.images.length;
    const unit = imagePrice(model(), request.size, request.quality);
    stats.costMicros = BigInt(unit) * BigInt(turn.images.length);
    return stats;
  }

  async function send(text) {
    if (controller || !els.key.value || !model()) return;
    const request = buildRequest(text);
    const kind = mode();
    lastRequest = request;
    renderSnippet();
    const userTurn = { role: "user", kind, content: text };
    turns.push(userTurn);
    bubble(userTurn);
    const turn = { role: "assistant", kind, content: "", model: request.model };
    const view = bubble(turn);
    const timing = { start: performance.now(), first: null };
    els.stats.textContent = ""; // the previous answer's figures must not stand for this one
    controller = new AbortController();
    setBusy(true);
    try {
      const serve = kind === "image" ? sendImage : sendChat;
      const stats = await serve(request, view, turn, timing);
      turns.push(turn);
      finishStats(turn, stats, timing);
    } catch (error) {
      if (error.name === "AbortError") {
        turn.stopped = true;
        turns.push(turn);
        showError(view, "Stopped.", { quiet: true });
      } else {
        turns.pop(); // a failed question is not part of the conversation sent next time
        showError(view, error.message);
      }
    } finally {
      controller = null;
      setBusy(false);
    }
  }

  function finishStats(turn, stats, timing) {
    const end = performance.now();
    turn.stats = {
      totalMs: Math.round(end - timing.start),
      // An image arrives whole: "first token" only means something for chat.
      ttftMs: timing.first === null || turn.kind === "image"
        ? null : Math.round(timing.first - timing.start),
      usage: stats.usage || null,
      images: stats.images || 0,
      costMicros: stats.costMicros === null || stats.costMicros === undefined
        ? null : stats.costMicros.toString(),
      requestId: stats.requestId,
    };
    showStats(turn.stats);
  }

  // ---- export ----

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function settings() {
    return { system: els.system.value.trim() || null, temperature: numberOf(els.temperature),
      max_tokens: numberOf(els.maxTokens), top_p: numberOf(els.topP),
      stream: els.stream.checked };
  }

  function exportJson() {
    const data = { exported_at: new Date().toISOString(), settings: settings(), turns };
    download("playground.json", "application/json", JSON.stringify(data, null, 2));
  }

  function exportMarkdown() {
    const lines = ["# Playground conversation", ""];
    const system = els.system.value.trim();
    if (system) lines.push("## System", "", system, "");
    for (const turn of turns) {
      lines.push(`## ${turn.role === "user" ? "User" : `Assistant (${turn.model})`}`, "");
      if (turn.content) lines.push(turn.content, "");
      for (const src of turn.images || []) lines.push(`![Generated image](${src})`, "");
      if (turn.stopped) lines.push("_(stopped)_", "");
      if (turn.stats && turn.stats.costMicros !== null) {
        lines.push(`_${turn.stats.totalMs} ms, cost ${formatUsd(turn.stats.costMicros)}_`, "");
      }
    }
    download("playground.md", "text/markdown", lines.join("\n"));
  }

  // ---- copy code ----

  function pyInline(value) {
    if (value === null) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(pyInline).join(", ") + "]";
    const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyInline(v)}`);
    return "{" + items.join(", ") + "}";
  }

  function pyLiteral(value, indent) {
    const pad = "    ".repeat(indent + 1);
    const end = "    ".repeat(indent);
    const inline = pyInline(value);
    if (value === null || typeof value !== "object" || inline.length <= 72) return inline;
    if (Array.isArray(value)) {
      if (!value.length) return "[]";
      return "[\n" + value.map((v) => pad + pyLiteral(v, indent + 1)).join(",\n")
        + ",\n" + end + "]";
    }
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    const items = entries.map(
      ([k, v]) => `${pad}${JSON.stringify(k)}: ${pyLiteral(v, indent + 1)}`);
    return "{\n" + items.join(",\n") + ",\n" + end + "}";
  }

  function snippet(lang, request) {
    const isImage = "prompt" in request;
    const path = isImage ? "/images/generations" : "/chat/completions";
    const json = JSON.stringify(request, null, 2);
    if (lang === "curl") {
      return `curl ${apiBase}${path} \\\n  -H "Authorization: Bearer vg_..." \\\n`
        + `  -H "Content-Type: application/json" \\\n  -d '${json.replaceAll("'", "'\\''")}'`;
    }
    const call = isImage ? "client.images.generate" : "client.chat.completions.create";
    if (lang === "python") {
      const args = Object.entries(request)
        .map(([k, v]) => `    ${k}=${pyLiteral(v, 1)},`).join("\n");
      const head = `from openai import OpenAI\n\nclient = OpenAI(base_url="${apiBase}", `
        + `api_key="vg_...")\n\nresponse = ${call}(\n${args}\n)\n`;
      if (isImage) return head + "print(response.data[0].b64_json[:60])";
      if (request.stream) {
        return head + "for chunk in response:\n    if chunk.choices:\n"
          + "        print(chunk.choices[0].delta.content or \"\", end=\"\")";
      }
      return head + "print(response.choices[0].message.content)";
    }
    const head = `import OpenAI from "openai";\n\nconst client = new OpenAI({ baseURL: `
      + `"${apiBase}", apiKey: "vg_..." });\n\nconst response = await ${call}(${json});\n`;
    if (isImage) return head + "console.log(response.data[0].b64_json.slice(0, 60));";
    if (request.stream) {
      return head + "for await (const chunk of response) {\n"
        + "  process.stdout.write(chunk.choices[0]?.delta?.content ?? \"\");\n}";
    }
    return head + "console.log(response.choices[0].message.content);";
  }

  function renderSnippet() {
    if (!model()) return;
    const text = els.message.value.trim();
    const request = text || !lastRequest ? buildRequest(text || "Hello!") : lastRequest;
    const code = snippet(els.lang.value, request);
    els.snippet.textContent = code;
    els.copy.dataset.copy = code;
  }

  // ---- wiring ----

  els.compose.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.message.value.trim();
    if (!text) return;
    els.message.value = "";
    send(text);
  });
  els.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      els.compose.requestSubmit();
    }
  });
  els.stop.addEventListener("click", () => controller?.abort());
  els.clear.addEventListener("click", () => {
    turns.length = 0;
    lastRequest = null;
    els.log.replaceChildren();
    els.stats.textContent = "";
    renderSnippet();
  });
  els.exportJson.addEventListener("click", exportJson);
  els.exportMd.addEventListener("click", exportMarkdown);
  els.model.addEventListener("change", syncModel);
  els.mode.addEventListener("change", syncModel);
  els.size.addEventListener("change", () => { syncQualities(model()); renderSnippet(); });
  document.getElementById("pg-settings").addEventListener("input", renderSnippet);
  els.message.addEventListener("input", renderSnippet);
  els.lang.addEventListener("change", renderSnippet);
  syncModel();
})();
