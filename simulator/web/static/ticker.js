// The livesim ticker: load the snapshot, then follow the stream from the snapshot's cursor.
// Reloading the page does the same, so nothing is lost or shown twice; a stream.reset means
// the history changed (seek back, loop, restart) and the snapshot is loaded again.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  stream: null,
  source: null,
  posts: new Map(), // post id -> {post, pinned}
  cursor: null,
  events: 0,
  resets: 0,
  playing: true,
};
window.livesim = state; // read by the browser tests

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function start() {
  const streams = await api("/api/streams");
  const wanted = new URLSearchParams(location.search).get("stream");
  const picker = $("stream-picker");
  picker.replaceChildren(...streams.map((s) => new Option(`${s.id} (${s.feed})`, s.id)));
  const chosen = streams.find((s) => s.id === wanted) || streams[0];
  if (!chosen) {
    $("empty").textContent = "No streams. Start one with POST /api/streams.";
    return;
  }
  picker.value = chosen.id;
  picker.onchange = () => {
    location.search = `?stream=${encodeURIComponent(picker.value)}`;
  };
  const feeds = await api("/api/feeds");
  const feed = feeds.find((f) => f.id === chosen.feed);
  $("feed-title").textContent = feed ? feed.title : chosen.feed;
  document.title = `${$("feed-title").textContent} · livesim`;
  state.stream = chosen.id;
  await loadSnapshot();
}

async function loadSnapshot() {
  if (state.source) state.source.close();
  const snapshot = await api(`/api/streams/${encodeURIComponent(state.stream)}/posts`);
  state.posts.clear();
  for (const post of [...snapshot.posts].reverse()) {
    state.posts.set(post.id, {post, pinned: post.pinned});
  }
  state.cursor = snapshot.cursor;
  showState(snapshot);
  render();
  subscribe(snapshot.cursor);
}

function subscribe(cursor) {
  const url = `/streams/${encodeURIComponent(state.stream)}/events?last_event_id=${encodeURIComponent(cursor)}`;
  const source = new EventSource(url);
  state.source = source;
  source.onopen = () => setConnection("live", true);
  source.onerror = () => setConnection("reconnecting", false);
  for (const type of ["post.created", "post.updated", "post.deleted", "post.pinned",
                      "post.unpinned", "stream.state", "stream.reset"]) {
    source.addEventListener(type, (message) => onEvent(JSON.parse(message.data)));
  }
}

function onEvent(event) {
  state.events += 1;
  state.cursor = event.id;
  if (event.due_at) {
    const lag = Date.now() - Date.parse(event.due_at);
    $("lag").textContent = `lag ${Math.max(0, lag)} ms`;
  }
  const post = event.post;
  switch (event.type) {
    case "post.created":
    case "post.updated": {
      const old = state.posts.get(post.id);
      if (event.type === "post.created") {
        state.posts.delete(post.id);
        state.posts.set(post.id, {post, pinned: old ? old.pinned : false});
      } else if (old) {
        old.post = post; // an edit changes a post in place; one already deleted stays deleted
      }
      break;
    }
    case "post.deleted":
      state.posts.delete(post.id);
      break;
    case "post.pinned":
    case "post.unpinned":
      if (state.posts.has(post.id)) state.posts.get(post.id).pinned = event.type === "post.pinned";
      break;
    case "stream.state":
      showState(event.data);
      return;
    case "stream.reset":
      state.resets += 1;
      loadSnapshot();
      return;
  }
  if (event.archive_time) $("clock").textContent = formatTime(event.archive_time);
  render();
}

function showState(data) {
  state.playing = data.state === "playing";
  $("state").textContent = `${data.state} · ${data.speed}×`;
  $("state").className = `pill ${data.state}`;
  $("toggle").textContent = data.state === "paused" ? "Resume" : "Pause";
  $("speed").value = String(data.speed);
  if (data.position) $("clock").textContent = formatTime(data.position.archive_time);
}

function setConnection(text, live) {
  $("connection").textContent = text;
  $("connection").className = `pill ${live ? "on" : "off"}`;
}

function formatTime(iso) {
  const date = new Date(iso);
  return date.toLocaleString(undefined, {
    timeZone: "UTC", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  }) + " UTC";
}

const rendered = new Map(); // post id -> {entry snapshot, node}: unchanged posts keep their node

function render() {
  const entries = [...state.posts.values()].reverse();
  entries.sort((a, b) => Number(b.pinned) - Number(a.pinned));
  const nodes = entries.map((entry) => {
    const known = rendered.get(entry.post.id);
    if (known && known.post === entry.post && known.pinned === entry.pinned) return known.node;
    const node = renderPost(entry);
    rendered.set(entry.post.id, {post: entry.post, pinned: entry.pinned, node});
    return node;
  });
  for (const id of rendered.keys()) if (!state.posts.has(id)) rendered.delete(id);
  const list = $("posts");
  const wanted = new Set(nodes);
  for (const child of [...list.children]) if (!wanted.has(child)) child.remove();
  nodes.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
  $("empty").hidden = entries.length > 0;
  $("count").textContent = `${entries.length} post${entries.length === 1 ? "" : "s"}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function renderPost({post, pinned}) {
  const item = el("li", pinned ? "post pinned" : "post");
  item.dataset.postId = post.id;
  const meta = el("div", "meta");
  meta.append(el("time", null, formatTime(post.published_at)));
  if (pinned) meta.append(el("span", "badge", "pinned"));
  if (post.time_source && post.time_source !== "explicit") {
    meta.append(el("span", "muted", `(time ${post.time_source})`));
  }
  item.append(meta);
  if (post.headline) item.append(el("h2", null, post.headline));
  for (const paragraph of post.body.split("\n\n").filter(Boolean)) {
    item.append(el("p", null, paragraph));
  }
  for (const media of post.media || []) item.append(renderMedia(media));
  const credits = [post.author && `by ${post.author}`, post.editor && `edited by ${post.editor}`,
                   post.source && `[${post.source}]`].filter(Boolean);
  if (credits.length) item.append(el("div", "credits", credits.join(" · ")));
  return item;
}

function renderMedia(media) {
  const box = el("figure", `media ${media.kind}`);
  const label = {youtube: "▶ YouTube", instagram: "◻ Instagram", gallery: "▦ Gallery",
                 image: "▣ Photo"}[media.kind] || media.kind;
  const parts = [label];
  if (media.count) parts.push(`${media.count} items`);
  if (media.credit) parts.push(media.credit);
  box.append(el("span", "kind", parts.join(" · ")));
  const text = media.title || media.caption;
  if (text) box.append(el("figcaption", null, text));
  return box;
}

async function control(op, body) {
  try {
    await api(`/api/streams/${encodeURIComponent(state.stream)}/${op}`, body || {});
  } catch (error) {
    alert(error.message);
  }
}

$("toggle").onclick = () => control(state.playing ? "pause" : "resume");
$("restart").onclick = () => control("restart");
$("speed").onchange = (e) => control("speed", {speed: e.target.value === "max" ? "max" : Number(e.target.value)});

start().catch((error) => {
  setConnection("error", false);
  $("empty").textContent = `Could not load: ${error.message}`;
});
