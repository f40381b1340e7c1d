// The clasp search page: asks /api/search, shows each passage with a player, keeps the query in
// the URL. Plain DOM, no framework and nothing fetched from elsewhere, so it works offline.
"use strict";

const $ = (sel) => document.querySelector(sel);
const form = $("#search"), box = $("#q"), topK = $("#top_k"), list = $("#results"), status = $("#status");
const modeMenu = $("#mode"), rerankBox = $("#rerank"), jsonLink = $("#json");
const speakerMenu = $("#speaker"), sampleButton = $("#speaker-sample"), samplePlayer = $("#sample");
const speakerSamples = new Map();  // speaker id -> its sample's audio URL
const RERANK = 10;  // windows a ticked "transcribe the best windows first" reads
let selected = -1;
let pending = null;

function clock(seconds) {
  const m = Math.floor(seconds / 60), s = seconds - 60 * m;
  const h = Math.floor(m / 60);
  const ss = s.toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m % 60).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function say(message, isError = false) {
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function hits() { return Array.from(list.querySelectorAll(".hit")); }

function select(i, focus = true) {
  const all = hits();
  if (!all.length) return;
  selected = Math.max(0, Math.min(all.length - 1, i));
  all.forEach((el, j) => el.classList.toggle("selected", j === selected));
  if (focus) {
    all[selected].focus({ preventScroll: true });
    all[selected].scrollIntoView({ block: "nearest" });
  }
}

function toggle(hit) {
  const audio = hit.querySelector("audio");
  if (audio.paused) audio.play(); else audio.pause();
}

// The passage URL plays exactly the hit; the recording URL (same id) lets it run on from there.
function continueInRecording(hit, result) {
  const audio = hit.querySelector("audio"), button = hit.querySelector(".more");
  if (hit.dataset.mode === "recording") {
    hit.dataset.mode = "passage";
    audio.src = result.audio_url;
    button.textContent = "Continue in the recording ▸";
    return;
  }
  const from = result.start + (audio.currentTime || 0);
  hit.dataset.mode = "recording";
  audio.src = result.audio_url.replace(/\/audio$/, "/recording") + `#t=${from.toFixed(2)}`;
  button.textContent = "◂ Just the passage";
  audio.play();
}

// The query's words (3 letters or more, as the CLI highlights them) marked in what was said.
function highlighted(text, query) {
  const words = [...new Set((query.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []).filter((w) => w.length >= 3))]
    .sort((a, b) => b.length - a.length).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const out = document.createDocumentFragment();
  if (!words.length) { out.append(text); return out; }
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(${words.join("|")})(?![\\p{L}\\p{N}_])`, "giu");
  let last = 0;
  for (const m of text.matchAll(re)) {
    out.append(text.slice(last, m.index));
    const mark = document.createElement("mark");
    mark.textContent = m[0];
    out.append(mark);
    last = m.index + m[0].length;
  }
  out.append(text.slice(last));
  return out;
}

// The player's own clock runs from 0 within a passage; this one shows the recording's time.
function showPosition(hit, result) {
  const audio = hit.querySelector("audio"), at = hit.querySelector(".at");
  const offset = hit.dataset.mode === "recording" ? 0 : result.start;
  at.textContent = `at ${clock(offset + (audio.currentTime || 0))}`;
}

function render(payload) {
  list.replaceChildren();
  selected = -1;
  const template = $("#hit").content;
  payload.results.forEach((r, i) => {
    const hit = template.firstElementChild.cloneNode(true);
    const slash = r.path.lastIndexOf("/");
    hit.querySelector(".rank").textContent = `${r.rank}.`;
    hit.querySelector(".dir").textContent = r.path.slice(0, slash + 1);
    hit.querySelector(".name").textContent = r.path.slice(slash + 1);
    hit.querySelector(".span").textContent = `${clock(r.start)}–${clock(r.end)}`;
    hit.querySelector(".score").textContent = r.score.toFixed(3);
    if (r.speaker) hit.querySelector(".who").textContent = r.speaker.name || `Speaker ${r.speaker.id}`;
    // Indexes with transcripts carry the words of each passage; others show none.
    if (typeof r.text === "string") hit.querySelector(".text").replaceChildren(highlighted(r.text, payload.query));
    const audio = hit.querySelector("audio");
    audio.src = r.audio_url;
    hit.dataset.mode = "passage";
    showPosition(hit, r);
    audio.addEventListener("timeupdate", () => showPosition(hit, r));
    audio.addEventListener("emptied", () => showPosition(hit, r));
    hit.querySelector(".more").addEventListener("click", () => continueInRecording(hit, r));
    hit.addEventListener("click", () => select(i, false));
    if (r.weak) {
      hit.classList.add("weak");
      if (!list.querySelector(".cut")) {
        const cut = document.createElement("li");
        cut.className = "cut";
        cut.textContent = "Weaker matches: below the level that queries with no answer reach";
        list.append(cut);
      }
    }
    list.append(hit);
  });
  if (payload.results.length) select(0, false);
}

function searchParams(q, k) {
  const p = { q, top_k: k };
  if (modeMenu.value) p.mode = modeMenu.value;
  if (speakerMenu.value) p.speaker = speakerMenu.value;
  if (rerankBox.checked && !rerankBox.closest("label").hidden && modeMenu.value !== "keyword") p.rerank = RERANK;
  return new URLSearchParams(p);
}

async function search(q, k) {
  if (pending) pending.abort();
  pending = new AbortController();
  const t0 = performance.now();
  const params = searchParams(q, k);
  jsonLink.href = `/api/search?${params}`;
  jsonLink.hidden = params.has("rerank");  // a link cannot carry the header that reranking needs
  say(params.has("rerank") ? "Transcribing the best windows, then searching…" : "Searching…");
  try {
    // Reranking makes the server transcribe; it asks for this header so other sites cannot.
    const headers = params.has("rerank") ? { "X-Clasp-Request": "1" } : {};
    const res = await fetch(`/api/search?${params}`, { signal: pending.signal, headers });
    const payload = await res.json();
    if (!res.ok) { list.replaceChildren(); say(payload.error || `error ${res.status}`, true); return; }
    render(payload);
    const n = payload.results.length;
    say(n ? `${n} passage${n > 1 ? "s" : ""} for “${payload.query}” (${Math.round(performance.now() - t0)} ms)` : `Nothing found for “${payload.query}”.`);
  } catch (e) {
    if (e.name !== "AbortError") say(`The server did not answer: ${e.message}`, true);
  }
}

function fromUrl() {
  const p = new URLSearchParams(location.search);
  box.value = p.get("q") || "";
  modeMenu.value = ["hybrid", "vector", "keyword"].includes(p.get("mode")) ? p.get("mode") : "";
  rerankBox.checked = p.get("rerank") === "1";
  const who = p.get("speaker") || "";
  if (who && ![...speakerMenu.options].some((o) => o.value === who)) speakerMenu.append(new Option(who, who));
  speakerMenu.value = who;
  sampleButton.hidden = !speakerSamples.has(speakerMenu.value);
  const k = p.get("top_k");
  if (k) {
    // A shared link may ask for a count the menu lacks; offer it rather than drop it.
    if (![...topK.options].some((o) => o.value === k)) topK.append(new Option(k, k));
    topK.value = k;
  }
  document.title = box.value ? `${box.value} – clasp` : "clasp";
  if (box.value.trim()) search(box.value, topK.value); else { list.replaceChildren(); say(""); }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const q = box.value.trim();
  if (!q) return;
  const state = { q, top_k: topK.value };
  if (modeMenu.value) state.mode = modeMenu.value;
  if (speakerMenu.value) state.speaker = speakerMenu.value;
  if (rerankBox.checked) state.rerank = "1";
  const url = `?${new URLSearchParams(state)}`;
  if (url !== location.search) history.pushState(null, "", url);
  document.title = `${q} – clasp`;
  search(q, topK.value);
});
window.addEventListener("popstate", fromUrl);

// One player at a time: starting a hit pauses the one before.
document.addEventListener("play", (e) => {
  document.querySelectorAll("audio").forEach((a) => { if (a !== e.target) a.pause(); });
}, true);

document.addEventListener("keydown", (e) => {
  const t = e.target;
  const typing = t === box || t.tagName === "SELECT";
  if (e.key === "/" && !typing) { e.preventDefault(); box.focus(); box.select(); return; }
  if (e.key === "ArrowDown") {
    if (typing || t.closest(".hit") || t === document.body) { e.preventDefault(); select(typing ? Math.max(selected, 0) : selected + 1); }
    return;
  }
  if (e.key === "ArrowUp" && !typing && (t.closest(".hit") || t === document.body)) {
    e.preventDefault();
    if (selected <= 0) { box.focus(); return; }
    select(selected - 1);
    return;
  }
  // Enter or Space on a hit itself plays it; on its own controls they keep their usual meaning.
  if ((e.key === "Enter" || e.key === " ") && t.classList && t.classList.contains("hit")) {
    e.preventDefault();
    toggle(t);
  }
});

async function footer() {
  try {
    const res = await fetch("/api/info");
    const i = await res.json();
    if (!res.ok) return;
    const updated = i.updated ? new Date(i.updated * 1000).toLocaleString() : "never";
    const parts = [`${i.files} files`, `${i.passages} passages`, `${i.hours.toFixed(2)} h of audio`,
      `model ${i.model}`, `${(i.size_bytes / 2 ** 20).toFixed(1)} MB`, `updated ${updated}`];
    if (i.failed_files.length) parts.push(`${i.failed_files.length} files could not be read`);
    $("#info").textContent = `${i.index} · ${parts.join(" · ")}`;
    // Without transcripts, what was said is known only for windows a rerank has read: offer it.
    $("#rerank-box").hidden = i.transcribed >= i.passages;
  } catch (e) { /* the footer is a courtesy; searching still works */ }
}

// The speakers of the index, for the filter; each one's sample plays from the button beside it.
async function speakers() {
  try {
    const res = await fetch("/api/speakers");
    if (!res.ok) return;
    for (const s of await res.json()) {
      const label = `${s.name || `Speaker ${s.id}`} (${Math.round(s.seconds / 60)} min, ${s.files} file${s.files > 1 ? "s" : ""})`;
      const value = String(s.id);
      const old = [...speakerMenu.options].find((o) => o.value === value || (s.name && o.value === s.name));
      if (old) { old.value = value; old.textContent = label; } else speakerMenu.append(new Option(label, value));
      if (s.sample_url) speakerSamples.set(value, s.sample_url);
    }
    speakerMenu.hidden = speakerMenu.options.length <= 1;
    sampleButton.hidden = !speakerSamples.has(speakerMenu.value);
  } catch (e) { /* no speakers: the filter stays hidden */ }
}
speakerMenu.addEventListener("change", () => { sampleButton.hidden = !speakerSamples.has(speakerMenu.value); });
sampleButton.addEventListener("click", () => {
  samplePlayer.src = speakerSamples.get(speakerMenu.value);
  samplePlayer.play();
});

fromUrl();
footer();
speakers();
