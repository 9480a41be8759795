// The livesim ticker. Shared stream: load the snapshot, then follow the stream over SSE from the
// snapshot's cursor; reloading does the same, so nothing is lost or shown twice, and a
// stream.reset (seek back, loop, restart) means "load the snapshot again".
// ?private=1: a replay of the feed for this page alone, over /feeds/{feed}/ws, steered with the
// WebSocket ops, so its pause pauses nobody else. ?kiosk=1: no controls, large type, a clock.
// A big stream at speed max must not outrun the page: events only change `state` (cheap), the DOM
// is brought up to date at most once per animation frame, and only the newest WINDOW posts (plus
// the pinned ones) are kept, so a frame's work does not grow with the stream.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const flag = (name) => ["1", "true", "yes", "on"].includes((params.get(name) || "").toLowerCase());

const WINDOW = 200; // posts kept and shown, besides the pinned ones
const PAGE = 200; // posts asked for at once: the snapshot, and each "load older"
const BURST = 10; // more new posts than this in one update: a flood, shown without highlights
const RENDER_GAP = 100; // ms between two DOM updates at least
const PRIVATE_PASS = ["max_gap", "loop", "scenario", "faults", "timestamps"];

const state = {
  mode: flag("private") ? "private" : "shared",
  kiosk: flag("kiosk"),
  stream: null,
  feed: null,
  source: null, // EventSource (shared) or WebSocket (private)
  posts: new Map(), // post id -> {post, pinned, pinOrder, fresh}, oldest first; bounded by `limit`
  limit: WINDOW, // unpinned posts kept; "load older" raises it
  older: false, // the server pages the snapshot (?limit=&before=) and has older posts
  total: 0, // visible posts in the stream as far as the page knows (shown or not)
  pins: 0, // pin events seen: a newer pin gets a higher pinOrder
  renders: 0, // DOM updates done (at most one per animation frame)
  pendingRender: false,
  lastRender: 0, // performance.now() of the last DOM update
  renderMs: 0, // time spent updating the DOM, in all
  lag: null, // ms between the last event's due_at and its arrival
  timestamps: "archive", // "now": the stream replays as of today (post times are today's)
  clockTicking: false, // the header shows the time of day, not the archive's clock
  archiveTime: null, // the last event's archive_time, shown at the next render
  unseenNew: 0, // posts arrived since the last render
  keyEventsKnown: false, // the server flags key events itself (snapshot has key_events)
  cursor: null,
  events: 0,
  resets: 0,
  playing: !(flag("private") && flag("paused")),
  speed: params.get("speed") || 60, // a private replay's, kept across its reconnects
  position: null, // archive time (ms) of the replay
  span: null, // {first, last} archive times (ms)
  unseen: 0,
  generation: 0,
  pendingPost: false, // a private replay's post op awaits its post.created or error
  privateFailures: 0, // private connections closed in a row
};
window.livesim = state; // the documented test hook (docs/ticker.md)

const EVENT_TYPES = ["post.created", "post.updated", "post.deleted", "post.pinned",
                     "post.unpinned", "stream.state", "stream.reset"];

async function api(path, body, method = "POST") {
  const init = body === undefined && method === "POST" ? {} : {
    method,
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body || {}),
  };
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

// Start-up -----------------------------------------------------------------------------------

async function start() {
  document.documentElement.classList.toggle("kiosk", state.kiosk);
  document.body.classList.toggle("kiosk", state.kiosk);
  if (state.kiosk) startClock();
  // On a phone the panels start folded, so the posts come first.
  if (window.matchMedia("(max-width: 760px)").matches && !state.kiosk) $("key-panel").open = false;
  const streams = await api("/api/streams");
  const feeds = await api("/api/feeds");
  const wanted = params.get("stream");
  const chosen = streams.find((s) => s.id === wanted) || streams[0];
  const picker = $("stream-picker");
  picker.replaceChildren(...streams.map((s) => new Option(s.id === s.feed ? s.id : `${s.id} (${s.feed})`, s.id)));
  const feedId = params.get("feed") || (chosen && chosen.feed) || (feeds[0] && feeds[0].id);
  const feed = feeds.find((f) => f.id === feedId);
  if (!feed || (state.mode === "shared" && !chosen)) {
    $("empty").textContent = "No streams. Start one with POST /api/streams.";
    setConnection("no stream", false);
    return;
  }
  state.feed = feed.id;
  state.stream = chosen ? chosen.id : null;
  if (chosen) picker.value = chosen.id;
  picker.onchange = () => go({stream: picker.value});
  $("feed-title").textContent = feed.title;
  document.title = `${feed.title} · livesim`;
  state.span = {first: Date.parse(feed.first), last: Date.parse(feed.last)};
  setUpSeek();
  setUpMode();
  if (state.mode === "private") openPrivate(params.get("from"));
  else await loadSnapshot();
}

function startClock() {
  // A newsroom screen shows the time of day, ticking, so it never looks frozen between posts;
  // in UTC, the zone the post times are shown in. So does a stream replayed as of today
  // (timestamps "now"): its posts carry today's times, and the archive's clock means nothing.
  if (state.clockTicking) return;
  state.clockTicking = true;
  const clock = $("clock");
  clock.title = "Time now (UTC)";
  const tick = () => {
    const now = new Date().toLocaleTimeString("en-GB", {...UTC, hour: "2-digit", minute: "2-digit", second: "2-digit"});
    clock.textContent = `${now} UTC`;
  };
  tick();
  setInterval(tick, 1000);
}

function go(changes) {
  const next = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) next.delete(key);
    else next.set(key, value);
  }
  location.search = `?${next}`;
}

function setUpMode() {
  const link = $("mode-switch");
  const next = new URLSearchParams(location.search);
  if (state.mode === "private") {
    $("mode").hidden = false;
    $("mode").textContent = "Private replay";
    next.delete("private");
    link.textContent = "Back to the shared stream";
    $("scope").textContent = "Your own replay: pausing, seeking or posting here affects nobody else.";
    $("stream-picker").hidden = true;
  } else {
    next.set("private", "1");
    link.textContent = "Watch privately";
    $("scope").textContent = "These controls steer the shared stream for every viewer.";
  }
  link.href = `?${next}`;
}

// Shared stream: snapshot + SSE --------------------------------------------------------------

function postsUrl(query) {
  return `/api/streams/${encodeURIComponent(state.stream)}/posts?${new URLSearchParams(query)}`;
}

async function loadSnapshot() {
  const mine = ++state.generation;
  if (state.source) state.source.close();
  // A server that pages the snapshot answers the newest PAGE posts; one that ignores ?limit=
  // sends them all (up to server.max_snapshot_bytes) and the page keeps the newest.
  const snapshot = await api(postsUrl({limit: PAGE}));
  if (mine !== state.generation) return;
  state.posts.clear();
  state.limit = WINDOW;
  state.keyEventsKnown = Array.isArray(snapshot.key_events);
  const posts = snapshot.posts;
  state.total = posts.length + (snapshot.omitted || 0);
  state.older = hasOlder(snapshot, posts.length);
  // Newest first, so the newest WINDOW unpinned posts are the first ones met.
  const kept = [];
  let unpinned = 0;
  for (const post of posts) {
    if (post.pinned) kept.push(post);
    else if (unpinned < state.limit) {
      kept.push(post);
      unpinned += 1;
    }
  }
  if (posts.length > kept.length) state.older = false; // ?limit= ignored: no paging to ask for
  kept.reverse().forEach((post, i) => {
    state.posts.set(post.id, {post, pinned: Boolean(post.pinned), pinOrder: post.pinned ? i - kept.length : 0, fresh: false});
  });
  state.cursor = snapshot.cursor;
  showState(snapshot);
  render();
  subscribe(snapshot.cursor);
}

function hasOlder(answer, count) {
  // A paged answer says more exist by a cursor for the next page or by the posts it left out;
  // an answer of all the posts (?limit= ignored) has more posts than asked for.
  if (count > PAGE) return false;
  const next = answer.page ? answer.page.next : answer.next;
  return Boolean(next || answer.has_more || (answer.omitted || 0) > 0);
}

async function loadOlder() {
  const button = $("older");
  const oldest = [...state.posts.values()].find((entry) => !entry.pinned);
  if (!oldest) return;
  button.disabled = true;
  try {
    const mine = state.generation;
    const page = await api(postsUrl({limit: PAGE, before: oldest.post.id}));
    if (mine !== state.generation) return;
    const older = page.posts.filter((post) => !state.posts.has(post.id));
    // A server that ignores ?before= sends the newest posts again: nothing older, no more asking.
    state.older = older.length > 0 && hasOlder(page, page.posts.length);
    state.limit += older.length;
    const merged = new Map();
    for (const post of older.reverse()) {
      merged.set(post.id, {post, pinned: Boolean(post.pinned), pinOrder: 0, fresh: false});
    }
    for (const [id, entry] of state.posts) merged.set(id, entry);
    state.posts = merged;
  } catch (error) {
    notice(error.message, true);
  } finally {
    button.disabled = false;
  }
  scheduleRender();
}

function subscribe(cursor) {
  const url = `/streams/${encodeURIComponent(state.stream)}/events?last_event_id=${encodeURIComponent(cursor)}`;
  const source = new EventSource(url);
  state.source = source;
  source.onopen = () => setConnection("live", true);
  source.onerror = () => {
    setConnection("reconnecting", false);
    // EventSource retries a dropped connection itself; a refused one (the stream was deleted)
    // closes it for good: start over in a while.
    if (source.readyState === EventSource.CLOSED && state.source === source) {
      setTimeout(() => loadSnapshot().catch(fail), 5000);
    }
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (message) => onEvent(JSON.parse(message.data)));
  }
}

// Private replay: one WebSocket, steered with ops ----------------------------------------------

function openPrivate(from) {
  const query = new URLSearchParams({speed: String(state.speed)});
  // Whatever the private endpoint takes is passed on as given; the server judges it.
  for (const name of PRIVATE_PASS) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  if (from) query.set("from", from);
  if (!state.playing) query.set("paused", "true");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/feeds/${encodeURIComponent(state.feed)}/ws?${query}`);
  state.source = socket;
  state.keyEventsKnown = true; // a private replay sends key_event on the posts themselves
  socket.onopen = () => {
    state.privateFailures = 0;
    setConnection("private", true);
  };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "error") {
      if (state.pendingPost) formMessage(data.error, null);
      else notice(data.error, true);
      state.pendingPost = false;
      return;
    }
    if (data.id === undefined) return; // pong, resumed
    if (data.type === "stream.reset") {
      // A seek back or a loop: what follows is the replay from its new position.
      state.resets += 1;
      if (data.data && data.data.reason !== "private") {
        state.posts.clear();
        state.total = 0;
        scheduleRender();
      }
      return;
    }
    onEvent(data);
  };
  socket.onclose = () => {
    if (state.source !== socket) return;
    // A refused handshake (a bad speed, max_gap, from, loop or scenario in the address) closes
    // before opening; after three of those in a row, stop and say so.
    state.privateFailures += 1;
    if (state.privateFailures >= 3) {
      setConnection("refused", false);
      notice(`The private replay could not start: check speed, from, paused, ${PRIVATE_PASS.join(", ")} in the address.`, true);
      return;
    }
    setConnection("reconnecting", false);
    // A new connection is a new replay: go on from where this one was, keeping the posts.
    const at = state.position ? new Date(state.position).toISOString() : from;
    setTimeout(() => openPrivate(at), 1000 * state.privateFailures);
  };
}

function sendOp(op) {
  if (state.source instanceof WebSocket && state.source.readyState === WebSocket.OPEN) {
    state.source.send(JSON.stringify(op));
    return true;
  }
  notice("Not connected to the private replay; try again in a moment.", true);
  return false;
}

// Events -------------------------------------------------------------------------------------

function onEvent(event) {
  state.events += 1;
  state.cursor = event.id;
  if (event.due_at) {
    state.lag = Math.max(0, Date.now() - Date.parse(event.due_at));
  }
  const post = event.post;
  switch (event.type) {
    case "post.created": {
      const old = state.posts.get(post.id);
      if (state.pendingPost && post.id.startsWith("live-")) {
        state.pendingPost = false;
        $("post-form").reset();
        formMessage(null, `Posted to your private replay (${post.id}).`);
      }
      state.posts.delete(post.id);
      state.posts.set(post.id, {post, pinned: old ? old.pinned : Boolean(post.pinned),
                                pinOrder: old ? old.pinOrder : 0, fresh: !old});
      if (!old) {
        state.total += 1;
        state.unseenNew += 1;
        trim();
      }
      break;
    }
    case "post.updated": {
      const old = state.posts.get(post.id);
      if (old) old.post = post; // an edit changes a post in place; one already deleted stays deleted
      break;
    }
    case "post.deleted":
      state.posts.delete(post.id);
      state.total = Math.max(0, state.total - 1);
      break;
    case "post.pinned":
    case "post.unpinned":
      pin(post, event.type === "post.pinned");
      break;
    case "stream.state":
      showState(event.data);
      return;
    case "stream.reset":
      state.resets += 1;
      loadSnapshot().catch(fail);
      return;
  }
  if (event.archive_time) state.archiveTime = event.archive_time;
  scheduleRender();
}

function pin(post, pinned) {
  const entry = state.posts.get(post.id);
  if (entry) {
    entry.pinned = pinned;
    entry.pinOrder = pinned ? ++state.pins : 0;
  } else if (pinned) {
    // Pinned after it left the window: the event carries the post, so it comes back, in its
    // place in time (the window is oldest first, and it is older than all of it).
    const entries = [...state.posts];
    state.posts = new Map([[post.id, {post, pinned, pinOrder: ++state.pins, fresh: false}], ...entries]);
  }
}

function trim() {
  // Drop the oldest unpinned posts past the window; Map order is arrival order, oldest first.
  let unpinned = 0;
  for (const entry of state.posts.values()) if (!entry.pinned) unpinned += 1;
  for (const [id, entry] of state.posts) {
    if (unpinned <= state.limit) break;
    if (entry.pinned) continue;
    state.posts.delete(id);
    unpinned -= 1;
  }
}

function scheduleRender() {
  // One DOM update per animation frame, however many events came in since, and at most one
  // every RENDER_GAP ms: a flood is drawn ten times a second, not sixty. A hidden tab gets no
  // frames, so a timer does it there (browsers slow it to once a second).
  if (state.pendingRender) return;
  state.pendingRender = true;
  let frame = 0;
  let timer = 0;
  const run = () => {
    if (!state.pendingRender) return;
    state.pendingRender = false;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    render();
  };
  const wait = Math.max(0, state.lastRender + RENDER_GAP - performance.now());
  setTimeout(() => {
    frame = requestAnimationFrame(run);
    timer = setTimeout(run, 250);
  }, wait);
}

function showState(data) {
  state.playing = data.state === "playing";
  state.timestamps = data.timestamps || "archive";
  if (state.timestamps === "now") startClock();
  state.speed = data.speed;
  $("state").textContent = statusText(data.state, data.speed);
  $("state").className = `pill ${data.state}`;
  $("live-badge").classList.toggle("idle", data.state !== "playing");
  $("toggle").textContent = data.state === "paused" ? "Resume" : "Pause";
  const speed = $("speed");
  if (![...speed.options].some((o) => o.value === String(data.speed))) {
    speed.append(new Option(`${data.speed}×`, String(data.speed)));
  }
  speed.value = String(data.speed);
  if (data.position) showPosition(data.position.archive_time);
}

function statusText(name, speed) {
  // "paused · 60×", "playing · max speed"; an ended stream's speed says nothing.
  if (name === "ended") return "ended";
  return `${name} · ${speed === "max" ? "max speed" : `${speed}×`}`;
}

function showPosition(iso) {
  state.position = Date.parse(iso);
  if (!state.clockTicking) $("clock").textContent = formatStamp(iso);
  const seek = $("seek");
  if (!seek.closest(".seek").classList.contains("dragging") && state.span) {
    seek.value = String(Math.round((state.position - state.span.first) / 1000));
  }
}

function setConnection(text, live) {
  $("connection").textContent = text;
  $("connection").className = `pill ${live ? "on" : "off"}`;
}

function notice(text, isError = false) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
  box.classList.toggle("error", isError);
  clearTimeout(notice.timer);
  if (text) notice.timer = setTimeout(() => { box.hidden = true; }, isError ? 15000 : 6000);
}

// "New posts" marker -------------------------------------------------------------------------

function scrolledDown() {
  return window.scrollY > 240;
}

function countUnseen(count) {
  if (!scrolledDown() || state.kiosk) return;
  state.unseen += count;
  $("new-count").textContent = String(state.unseen);
  $("new-posts").hidden = false;
}

function clearUnseen() {
  state.unseen = 0;
  $("new-posts").hidden = true;
}

$("new-posts").onclick = () => {
  window.scrollTo({top: 0, behavior: "smooth"});
  clearUnseen();
};
window.addEventListener("scroll", () => { if (!scrolledDown()) clearUnseen(); }, {passive: true});

// Rendering ----------------------------------------------------------------------------------

function isKeyEvent(post) {
  // Servers that know key events mark them (key_event: true); an older one does not, and then a
  // post with a headline is taken for one, as live blogs do.
  if (state.keyEventsKnown || "key_event" in post) return post.key_event === true;
  return Boolean(post.headline);
}

const rendered = new Map(); // post id -> {post, pinned, node}: unchanged posts keep their node
let keyPosts = []; // the posts the key events panel shows
let pinSignature = "";

function render() {
  const began = performance.now();
  state.renders += 1;
  if (state.archiveTime) showPosition(state.archiveTime);
  state.archiveTime = null;
  if (state.lag !== null) $("lag").textContent = `lag ${state.lag} ms`;
  if (state.unseenNew) countUnseen(state.unseenNew);
  state.unseenNew = 0;
  // Newest first. The most recently pinned post heads the list; other pinned posts stay in
  // their place in time and are named in the "Also pinned" strip above it.
  const entries = [...state.posts.values()].reverse();
  const pinned = entries.filter((entry) => entry.pinned).sort((a, b) => b.pinOrder - a.pinOrder);
  const top = pinned[0];
  if (top) entries.splice(entries.indexOf(top), 1);
  const ordered = top ? [top, ...entries] : entries;
  const fresh = ordered.filter((entry) => entry.fresh).length;
  const animate = fresh <= BURST; // a flood is shown as it is, without highlights
  const nodes = ordered.map((entry) => {
    const isTop = entry === top;
    const known = rendered.get(entry.post.id);
    const wasFresh = entry.fresh;
    entry.fresh = false;
    if (known && known.post === entry.post && known.pinned === entry.pinned && known.top === isTop) return known.node;
    const node = renderPost(entry, isTop, animate && wasFresh);
    rendered.set(entry.post.id, {post: entry.post, pinned: entry.pinned, top: isTop, node});
    return node;
  });
  for (const id of rendered.keys()) if (!state.posts.has(id)) rendered.delete(id);
  const list = $("posts");
  const wanted = new Set(nodes);
  for (const child of [...list.children]) if (!wanted.has(child)) child.remove();
  nodes.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
  if (state.kiosk && top) clamp(rendered.get(top.post.id).node);
  renderAlsoPinned(pinned.slice(1));
  $("empty").hidden = ordered.length > 0;
  $("older").hidden = !state.older || state.mode === "private";
  const total = Math.max(state.total, ordered.length);
  const shown = ordered.length < total ? `${ordered.length} of ` : "";
  $("count").textContent = `${shown}${total} post${total === 1 ? "" : "s"}`;
  renderKeyEvents();
  state.lastRender = performance.now();
  state.renderMs += state.lastRender - began;
}

const CLAMP_REM = 11; // body.kiosk .post.top.clamped's max-height
const measured = new WeakSet(); // nodes whose clamp is decided: a changed post is a new node

function clamp(node) {
  // Kiosk: a long pinned post shows its first lines and fades, so new posts stay on screen. One
  // only a little longer than the cut is shown whole: fading its last line would hide more than
  // it saves.
  if (measured.has(node)) return;
  measured.add(node);
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
  node.classList.toggle("clamped", node.offsetHeight > CLAMP_REM * rem * 1.3);
}

function renderAlsoPinned(others) {
  const signature = others.map(({post}) => post.id).join(" ");
  if (signature === pinSignature) return;
  pinSignature = signature;
  const strip = $("also-pinned");
  strip.hidden = others.length === 0;
  strip.replaceChildren(el("span", "also-label", "Also pinned"), ...others.map(({post}) => {
    const link = el("a", null, summary(post) || formatStamp(post.published_at));
    link.href = `#post-${post.id}`;
    link.dataset.postId = post.id;
    link.dir = "auto";
    link.onclick = (e) => {
      e.preventDefault();
      jumpTo(post.id);
    };
    return link;
  }));
}

function renderKeyEvents() {
  const keys = [...state.posts.values()].reverse().filter(({post}) => isKeyEvent(post));
  if (keys.length === keyPosts.length && keys.every(({post}, i) => post === keyPosts[i])) return;
  keyPosts = keys.map(({post}) => post);
  const list = $("key-events");
  list.replaceChildren(...keys.map(({post}) => {
    const item = el("li");
    const link = el("a");
    link.href = `#post-${post.id}`;
    link.dataset.postId = post.id;
    link.append(el("time", null, formatStamp(post.published_at)));
    link.append(el("span", null, summary(post)));
    link.lastChild.dir = "auto";
    link.onclick = (e) => {
      e.preventDefault();
      jumpTo(post.id);
    };
    item.append(link);
    return item;
  }));
  $("key-count").textContent = String(keys.length);
  $("key-count").hidden = keys.length === 0; // no badge for nothing
  $("key-empty").hidden = keys.length > 0;
}

function jumpTo(postId) {
  const node = document.getElementById(`post-${postId}`);
  if (!node) return;
  node.scrollIntoView({behavior: "smooth", block: "start"});
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
  history.replaceState(null, "", `#post-${postId}`);
}

function summary(post) {
  if (post.headline) return post.headline;
  const text = post.body || (post.media || []).map((m) => m.title || m.caption).find(Boolean) || "";
  return text.length > 110 ? `${text.slice(0, 107).trimEnd()}…` : text;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

const TIME_NOTES = {
  interpolated: "Approximate time: the archive gives none for this post, so it was placed between the posts around it.",
  extrapolated: "Approximate time: the archive gives none for this post, so it was estimated from the blog's pace.",
};

function renderPost({post, pinned}, top, fresh) {
  const key = isKeyEvent(post);
  const classes = ["post", key && "key", pinned && "pinned", top && "top", fresh && "fresh"];
  const item = el("li", classes.filter(Boolean).join(" "));
  item.id = `post-${post.id}`;
  item.dataset.postId = post.id;
  const head = el("div", "post-head");
  const time = el("time", "post-time");
  time.dateTime = post.published_at;
  const note = TIME_NOTES[post.time_source];
  if (note) {
    const approx = el("abbr", "approx", "≈");
    approx.title = note;
    time.append(approx);
    time.title = note;
  }
  time.append(formatClock(post.published_at));
  head.append(time, el("span", "post-date", formatDay(post.published_at)));
  if (pinned) head.append(el("span", "badge pin", "Pinned"));
  if (key) head.append(el("span", "badge key", "Key event"));
  if (post.id.startsWith("live-") || post.id.startsWith("inject-")) head.append(el("span", "badge live", "New"));
  item.append(head);
  if (post.headline) {
    const h = el("h2", null, post.headline);
    h.dir = "auto";
    item.append(h);
  }
  for (const paragraph of (post.body || "").split("\n\n").filter((p) => p.trim())) {
    const p = el("p", null, paragraph);
    p.dir = "auto";
    item.append(p);
  }
  for (const block of renderMedia(post.media || [])) item.append(block);
  const credits = [post.author && `By ${post.author}`, post.editor && `edited by ${post.editor}`,
                   post.source && `Source: ${post.source}`].filter(Boolean);
  if (credits.length) item.append(el("div", "credits", credits.join(" · ")));
  return item;
}

// Media --------------------------------------------------------------------------------------

const PHOTO_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.6"><rect x="3" y="5" width="18" height="14" rx="2"/><circle cx="9" cy="10" r="1.8"/><path d="M21 16l-5-5-8 8"/></svg>';

function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return ["http:", "https:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

function renderMedia(media) {
  // A gallery's photos (the images of a post that has a gallery counter) form one strip.
  // A gallery counter without photos is only its line: no empty frames.
  const blocks = [];
  const images = media.filter((m) => m.kind === "image");
  const galleries = media.filter((m) => m.kind === "gallery");
  if (galleries.length && images.length) {
    blocks.push(strip(images, Math.max(images.length, ...galleries.map((g) => g.count || 0))));
  } else {
    for (const image of images) blocks.push(photo(image, false));
    for (const gallery of galleries) blocks.push(strip([], gallery.count || 0, gallery));
  }
  for (const item of media) {
    if (item.kind !== "image" && item.kind !== "gallery") blocks.push(embed(item));
  }
  return blocks;
}

function photo(image, small) {
  const figure = el("figure", "photo");
  const url = image.url && safeUrl(image.url);
  if (url) {
    const img = el("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.src = url;
    img.alt = image.caption || image.title || "Photo";
    figure.append(img);
  } else {
    const frame = el("div", "placeholder");
    frame.innerHTML = PHOTO_ICON;
    frame.setAttribute("role", "img");
    frame.setAttribute("aria-label", image.caption || image.title || "Photo (no picture in the archive)");
    figure.append(frame);
  }
  const text = image.caption || image.title;
  if (text || image.credit) {
    const caption = el("figcaption", null, small && text ? text : text || "");
    caption.dir = "auto";
    if (image.credit) caption.append(el("span", "credit", image.credit));
    figure.append(caption);
  }
  return small ? figure : wrap(figure);
}

function strip(images, count, gallery) {
  const box = el("div", "media gallery");
  const title = gallery && (gallery.title || gallery.caption);
  box.append(el("div", "strip-head", `Gallery · ${count} photo${count === 1 ? "" : "s"}${title ? ` · ${title}` : ""}`));
  if (!images.length) return box;
  const row = el("div", "strip");
  for (const image of images) row.append(photo(image, true));
  box.append(row);
  return box;
}

function wrap(node) {
  const box = el("div", "media");
  box.append(node);
  return box;
}

function embedUrl(item) {
  const url = item.url && safeUrl(item.url);
  if (url) return url;
  const title = item.title || item.caption;
  if (item.kind === "youtube" && title) {
    return `https://www.youtube.com/results?search_query=${encodeURIComponent(title)}`;
  }
  if (item.kind === "instagram" && item.credit && /^[A-Za-z0-9._]{1,30}$/.test(item.credit)) {
    return `https://www.instagram.com/${item.credit}/`;
  }
  return null;
}

function embed(item) {
  const url = embedUrl(item);
  const kindClass = ["youtube", "instagram"].includes(item.kind) ? item.kind : "other";
  const node = el(url ? "a" : "div", `embed ${kindClass}`);
  if (url) {
    node.href = url;
    node.target = "_blank";
    node.rel = "noopener noreferrer";
  }
  const icon = el("span", "embed-icon", {youtube: "▶", instagram: "◎"}[item.kind] || "↗");
  icon.setAttribute("aria-hidden", "true");
  const text = el("span", "embed-text");
  const label = {youtube: "YouTube", instagram: "Instagram", twitter: "X / Twitter",
                 video: "Video", link: "Link"}[item.kind] || item.kind;
  text.append(el("span", "embed-kind", item.credit ? `${label} · ${item.credit}` : label));
  const title = item.title || item.caption;
  if (title) {
    const t = el("div", "embed-title", title);
    t.dir = "auto";
    text.append(t);
  }
  node.append(icon, text);
  return wrap(node);
}

// Times --------------------------------------------------------------------------------------

const UTC = {timeZone: "UTC"};

function formatClock(iso) {
  return new Date(iso).toLocaleTimeString("en-GB", {...UTC, hour: "2-digit", minute: "2-digit"});
}

function formatDay(iso) {
  return new Date(iso).toLocaleDateString("en-GB", {...UTC, weekday: "short", day: "numeric", month: "short", year: "numeric"});
}

function formatStamp(iso) {
  const date = new Date(iso);
  return `${date.toLocaleDateString("en-GB", {...UTC, day: "numeric", month: "short"})} ${formatClock(iso)} UTC`;
}

// Controls -----------------------------------------------------------------------------------

function setUpSeek() {
  const seek = $("seek");
  const box = seek.closest(".seek");
  const span = Math.max(1, Math.round((state.span.last - state.span.first) / 1000));
  seek.max = String(span);
  $("seek-start").textContent = formatStamp(new Date(state.span.first).toISOString());
  $("seek-end").textContent = formatStamp(new Date(state.span.last).toISOString());
  const target = () => new Date(state.span.first + Number(seek.value) * 1000).toISOString();
  seek.oninput = () => {
    box.classList.add("dragging");
    $("seek-label").textContent = formatStamp(target());
  };
  seek.onchange = () => {
    box.classList.remove("dragging");
    // The far end means "after the last post", so that post is shown too.
    const to = seek.value === seek.max ? "end" : target().replace(".000Z", "Z");
    control("seek", {to});
  };
}

async function control(op, body) {
  if (state.mode === "private") {
    if (op === "pause" || op === "restart") sendOp({op});
    else if (op === "resume") sendOp({op: "resume"});
    else if (op === "speed") sendOp({op, speed: body.speed});
    else if (op === "seek") sendOp({op, to: body.to});
    return;
  }
  try {
    await api(`/api/streams/${encodeURIComponent(state.stream)}/${op}`, body || {});
  } catch (error) {
    notice(error.message, true);
  }
}

$("older").onclick = () => loadOlder();
$("toggle").onclick = () => control(state.playing ? "pause" : "resume");
$("restart").onclick = () => control("restart");
$("speed").onchange = (e) => control("speed", {speed: e.target.value === "max" ? "max" : Number(e.target.value)});

// Post form ----------------------------------------------------------------------------------

function formFields(form) {
  const data = new FormData(form);
  const text = (name) => (data.get(name) || "").toString().trim();
  const fields = {body: text("body")};
  for (const name of ["headline", "author", "source"]) if (text(name)) fields[name] = text(name);
  fields.key_event = data.get("key_event") === "on";
  fields.pinned = data.get("pinned") === "on";
  return fields;
}

function formMessage(error, ok) {
  $("post-error").hidden = !error;
  $("post-error").textContent = error || "";
  $("post-ok").hidden = !ok;
  $("post-ok").textContent = ok || "";
}

$("post-form").onsubmit = async (e) => {
  e.preventDefault();
  const form = e.target;
  const fields = formFields(form);
  formMessage(null, null);
  if (state.mode === "private") {
    state.pendingPost = sendOp({op: "post", ...fields});
    return;
  }
  try {
    const answer = await api(`/api/streams/${encodeURIComponent(state.stream)}/posts`, fields);
    form.reset();
    formMessage(null, `Published${answer && answer.post ? ` (${answer.post.id})` : ""}.`);
  } catch (error) {
    formMessage(error.message, null);
  }
};

function fail(error) {
  setConnection("error", false);
  $("empty").textContent = `Could not load: ${error.message}`;
}

start().catch(fail);
