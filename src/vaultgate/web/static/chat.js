// The chat: sends a question with one of the user's keys (named by id; the key never
// reaches the browser), streams the answer in as formatted Markdown, stops and regenerates.
// The server stores every turn; this script only shows them.
"use strict";

(() => {
  const root = document.getElementById("chat");
  if (!root) return;
  const markdown = window.VaultGateMarkdown;
  const $ = (id) => document.getElementById(id);
  const els = {
    log: $("chat-log"), compose: $("chat-compose"), message: $("chat-message"),
    model: $("chat-model"), modeField: $("chat-mode-field"), mode: $("chat-mode"),
    sizeField: $("chat-size-field"), size: $("chat-size"), key: $("chat-key"),
    send: $("chat-send"), stop: $("chat-stop"), regenerate: $("chat-regenerate"),
    status: $("chat-status"), title: $("chat-title"), sideList: $("chat-side-list"),
  };
  const csrf = root.dataset.csrf;
  let conversation = root.dataset.conversation || null;
  let controller = null;

  // ---- the chosen model ----

  function model() {
    const option = els.model.selectedOptions[0];
    return option ? JSON.parse(option.dataset.model) : null;
  }

  function answersWithImage() {
    const m = model();
    if (!m) return false;
    return m.type === "image" || (m.type === "hybrid" && els.mode.value === "image");
  }

  function syncModel() {
    const m = model();
    els.modeField.hidden = !m || m.type !== "hybrid";
    els.sizeField.hidden = !answersWithImage();
    if (!m) return;
    const current = els.size.value;
    els.size.replaceChildren(...m.sizes.map((size) => new Option(size, size)));
    if (m.sizes.includes(current)) els.size.value = current;
  }

  // ---- money, exactly as the server computes it ----

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

  // ---- the conversation on screen ----

  // The page keeps the newest text in view until the reader scrolls up to read back.
  const page = document.scrollingElement;
  let follow = true;

  function nearBottom() {
    return page.scrollHeight - page.scrollTop - page.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || follow) page.scrollTop = page.scrollHeight;
  }

  function turnView(role, modelId) {
    const item = document.createElement("article");
    item.className = "chat-turn chat-" + role;
    const who = document.createElement("h2");
    who.className = "chat-who";
    who.textContent = role === "user" ? "You" : modelId;
    const body = document.createElement("div");
    body.className = "chat-text md";
    item.append(who, body);
    els.log.querySelector(".chat-empty")?.remove();
    els.log.append(item);
    scrollDown(true);
    return { item, body, pending: false, text: "" };
  }

  function show(view, text) {
    view.text = text;
    if (view.pending) return;
    view.pending = true;
    // One render per frame however fast tokens come: cheap on a slow machine.
    requestAnimationFrame(() => {
      view.pending = false;
      markdown.renderInto(view.body, view.text);
      scrollDown(false);
    });
  }

  function meta(view, text, { error = false } = {}) {
    const line = document.createElement("p");
    line.className = error ? "notice error" : "chat-meta";
    if (error) line.setAttribute("role", "alert");
    line.textContent = text;
    view.item.append(line);
    scrollDown(false);
  }

  function showImages(view, sources) {
    for (const src of sources) {
      const img = document.createElement("img");
      img.className = "chat-image";
      img.src = src;
      img.alt = "Generated image";
      view.item.append(img);
    }
    scrollDown(true);
  }

  function usageLine(usage, costMicros, stopped) {
    const parts = [];
    if (usage) {
      parts.push(`${usage.prompt_tokens} tokens in`, `${usage.completion_tokens} tokens out`);
    }
    if (costMicros !== null) parts.push(formatUsd(costMicros));
    if (stopped) parts.push("stopped");
    return parts.join(" · ");
  }

  // ---- talking to the server ----

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

  async function post(path, payload, signal) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(payload),
      signal,
    });
    // A lapsed session is redirected to the sign-in page, which fetch follows.
    if (!response.ok || response.redirected) throw new Error(await errorMessage(response));
    return response;
  }

  async function ensureConversation(signal) {
    if (conversation) return false;
    const response = await post("/dashboard/chat/conversations", { model: model().id }, signal);
    const created = await response.json();
    conversation = String(created.id);
    root.dataset.conversation = conversation;
    history.replaceState(null, "", created.url);
    return true;
  }

  function applyTitle(response) {
    const raw = response.headers.get("x-chat-title");
    if (!raw) return;
    const title = decodeURIComponent(raw);
    els.title.textContent = title;
    document.title = `${title} · VaultGate`;
  }

  async function readStream(response, view) {
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
        if (delta) show(view, view.text + delta);
      }
    }
    return usage;
  }

  function payload(extra) {
    const body = { key_id: Number(els.key.value), model: model().id, ...extra };
    if (answersWithImage()) {
      body.mode = "image";
      body.size = els.size.value;
    }
    return body;
  }

  async function run(path, body, view, replaced) {
    const response = await post(path, body, controller.signal);
    for (const old of replaced) old.remove();
    applyTitle(response);
    const m = model();
    if ((response.headers.get("content-type") || "").includes("text/event-stream")) {
      const usage = await readStream(response, view);
      meta(view, usageLine(usage, usage ? tokenCost(m, usage) : null, false));
      return;
    }
    const answer = (await response.json()).message;
    if (answer.content) show(view, answer.content);
    showImages(view, answer.images);
    meta(view, usageLine(null, answer.cost_micros, false));
  }

  function setBusy(busy) {
    els.send.disabled = busy;
    els.stop.hidden = !busy;
    els.regenerate.hidden = busy || !els.log.querySelector(".chat-user");
    els.status.textContent = busy ? "Answering…" : "";
  }

  async function converse(path, body, view, replaced = []) {
    controller = new AbortController();
    setBusy(true);
    let created = false;
    let stored = false;
    try {
      created = await ensureConversation(controller.signal);
      await run(`/dashboard/chat/${conversation}/${path}`, body, view, replaced);
      stored = true;
    } catch (error) {
      if (error.name === "AbortError") {
        meta(view, "Stopped. The part written so far is kept.");
        stored = true;
      } else {
        meta(view, error.message, { error: true });
      }
    } finally {
      controller = null;
      setBusy(false);
    }
    // A new conversation's page has its tools (rename, share, export, delete): open it.
    if (created && stored) window.location.replace(`/dashboard/chat/${conversation}`);
    return stored;
  }

  async function ask(text) {
    if (controller || !els.key.value || !model()) return;
    const question = turnView("user");
    markdown.renderInto(question.body, text);
    const view = turnView("assistant", model().id);
    const stored = await converse("messages", payload({ content: text }), view);
    if (!stored) {
      // Nothing was stored: take the question back so it can be sent again.
      question.item.remove();
      if (!els.message.value) els.message.value = text;
    }
  }

  function trailingAnswers() {
    const turns = [...els.log.querySelectorAll(".chat-turn")];
    const last = turns.map((t) => t.classList.contains("chat-user")).lastIndexOf(true);
    return last < 0 ? null : turns.slice(last + 1);
  }

  async function regenerate() {
    const old = trailingAnswers();
    if (controller || old === null || !els.key.value || !model()) return;
    const view = turnView("assistant", model().id);
    await converse("regenerate", payload({}), view, old);
  }

  // ---- wiring ----

  els.compose.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.message.value.trim();
    if (!text) return;
    els.message.value = "";
    ask(text);
  });
  els.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.compose.requestSubmit();
    }
  });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && controller) controller.abort();
  });
  els.stop.addEventListener("click", () => controller?.abort());
  els.regenerate.addEventListener("click", regenerate);
  window.addEventListener("scroll", () => { follow = nearBottom(); }, { passive: true });
  // Images take their height when they load: keep following the end of the log.
  els.log.addEventListener("load", () => scrollDown(false), true);
  els.model.addEventListener("change", syncModel);
  els.mode.addEventListener("change", syncModel);
  if (els.sideList && window.matchMedia("(max-width: 48rem)").matches) {
    els.sideList.open = false; // on a phone the conversation comes first
  }
  syncModel();
  if (els.log.querySelector(".chat-turn")) scrollDown(true);
})();
