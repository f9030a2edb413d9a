// MarioNETte Live demo page: camera -> WebRTC -> server -> avatar stream back, plus live stats.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// The status channel's protocol, as rtc/messages.py defines it for the server.
const CHANNEL_LABEL = "status";
const MESSAGE = { STATUS: "status", ROSTER: "roster", CLOSED: "closed", ROOM_STATUS: "room_status",
                  ROOM_CLOSED: "room_closed" };
// Deployment settings from config.js. ICE/TURN servers come from the server (/api/ice-servers, fresh TURN
// credentials per call) unless config.js sets `iceServers` itself.
const config = { ...(window.MARIONETTE_CONFIG || {}) };
// Test-only: ?relay=1 sends all media through TURN (iceTransportPolicy "relay"), proving the relay works.
const RELAY_ONLY = params.get("relay") === "1";

// Everything a test (or a curious person in the console) may want to read.
const state = {
  target: params.get("target") || "astronaut",
  size: Number(params.get("size")) || 256,
  pc: null, channel: null, stream: null,
  sessionId: null, token: null,
  connected: false, framesDecoded: 0, fps: 0, lastStatus: null, error: null,
  closedReason: null,  // why the server ended the call (its "closed" message)
  room: params.get("room"), roomSize: 0, roster: null, ownMid: null,
  insecure: false,  // no camera API here: the page is neither https nor localhost
  candidatePair: null,  // {local, remote, protocol}: the ICE candidate types the call uses (host/srflx/relay)
  tiles: {},  // mid (or "feed:<n>" through an SFU) -> {figure, video, name}: the other participants' avatars
  sfu: null,  // "janus": the others' avatars come from the SFU, one watch (peer connection) per feed
  watches: {},  // feed -> {id, pc}
  upload: null,  // {files, answer}: the last upload, sent again with `face` when another face is picked
};
window.marionette = state;

let statsTimer = null;
let previousJitter = null;  // {delay, count} at the last stats sample: the jitter buffer figure is per interval

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
  if (isError) state.error = text;
}

// The avatar badge: idle | connecting | live | warn (no face) | error.
function setBadge(kind, text) {
  const badge = $("badge");
  badge.className = `badge ${kind}`;
  badge.textContent = text || kind;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `HTTP ${response.status}`;
}

// ---- targets -------------------------------------------------------------------------------

function addTargetButton(target, prepend = false) {
  const button = document.createElement("button");
  button.dataset.id = target.id;
  button.title = target.credit ? `${target.title} — ${target.credit}` : target.title;
  button.innerHTML = `<img alt=""><span></span>`;
  button.querySelector("img").src = target.image_url;
  button.querySelector("span").textContent = target.title;
  button.addEventListener("click", () => chooseTarget(target.id));
  const gallery = $("gallery");
  if (prepend) gallery.prepend(button); else gallery.append(button);
  markSelected();
}

function markSelected() {
  for (const button of $("gallery").querySelectorAll("button")) {
    button.classList.toggle("selected", button.dataset.id === state.target);
  }
}

async function loadTargets() {
  const response = await fetch("/api/targets");
  if (!response.ok) { say(`Could not load targets: ${await errorText(response)}`, true); return; }
  const { targets } = await response.json();
  targets.forEach((t) => addTargetButton(t));
}

// Which generator and landmark stage the server runs (from the answer to the offer; /api/info is internal).
function showServerInfo(info) {
  if (!info) return;
  state.generator = info.generator;
  $("stat-generator").textContent = `${info.generator} (${info.landmarks} landmarks, ${info.device})`;
}

async function chooseTarget(id) {
  const previous = state.target;
  state.target = id;
  markSelected();
  if (!state.sessionId) return;  // used when the call starts
  const response = await fetch(`/api/sessions/${state.sessionId}/target`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
    body: JSON.stringify({ target: id }),
  });
  if (!response.ok) {
    state.target = previous;
    markSelected();
    say(`Could not switch target: ${await errorText(response)}`, true);
  } else {
    say("Target switched.");
  }
}

function removeTargetButton(id) {
  const button = $("gallery").querySelector(`button[data-id="${CSS.escape(id)}"]`);
  if (button) button.remove();
}

// `faces`: which face of each photo to use (the answer's indices), sent again after a click in the picker;
// null lets the server choose.
async function uploadPhotos(files, faces = null) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("photo", file, file.name);
  if (faces) form.append("face", faces.join(","));
  say(faces ? "Using the face you picked…" : files.length > 1 ? `Uploading ${files.length} photos…` : "Uploading photo…");
  const label = $("upload").closest("label");
  label.classList.add("busy");
  let response;
  try {
    response = await fetch("/api/targets", { method: "POST", body: form });
  } catch (error) {
    say(`Upload failed: the server cannot be reached (${error.message}).`, true);
    return;
  } finally {
    label.classList.remove("busy");
  }
  if (!response.ok) { say(`Upload failed: ${await errorText(response)}`, true); return; }
  const target = await response.json();
  if (faces && state.upload) removeTargetButton(state.upload.answer.id);  // the same photos, another face
  state.upload = { files, answer: target };
  addTargetButton(target, true);
  showPhotoCheck(target);
  await chooseTarget(target.id);
  const warned = (target.warnings || []).length;
  say(`Uploaded: ${target.title}.` + (target.choose ? " Several faces could be the subject: click the one to use."
    : "") + (warned ? ` The photo check found ${warned === 1 ? "one thing" : `${warned} things`} the avatar will lack.` : ""));
}

// The upload's answer: the aligned crop the avatar uses, what it will lack, and the faces to pick from.
function showPhotoCheck(answer) {
  $("photo-check").classList.remove("hidden");
  $("check-crop").src = answer.image_url;
  const warnings = answer.warnings || [];
  const list = $("check-warnings");
  list.replaceChildren();
  list.classList.toggle("ok", !warnings.length);
  for (const text of warnings.length ? warnings : ["nothing to warn about: the photo suits the avatar"]) {
    const item = document.createElement("li");
    item.textContent = text;
    list.append(item);
  }
  const picker = $("faces");
  picker.replaceChildren();
  const several = (answer.photos || []).length > 1;
  (answer.photos || []).forEach((photo, p) => {
    if (photo.faces.length < 2) return;
    photo.faces.forEach((face, f) => {
      const button = document.createElement("button");
      button.className = f === photo.face ? "face selected" : "face";
      button.dataset.photo = String(p);
      button.dataset.face = String(f);
      button.title = `${several ? `photo ${p + 1}, ` : ""}face ${f}${f === photo.face ? " (in use)" : ""}`;
      const image = document.createElement("img");
      image.alt = button.title;
      image.src = face.crop;
      button.append(image);
      button.addEventListener("click", () => pickFace(p, f));
      picker.append(button);
    });
  });
  $("face-picker").classList.toggle("hidden", !picker.children.length);
  $("face-picker-text").textContent = answer.choose ? "Several faces could be the subject. Click the face to use:"
    : "Other faces in the photo: click one to use it instead.";
}

async function pickFace(photoIndex, faceIndex) {
  const { files, answer } = state.upload;
  if (answer.photos[photoIndex].face === faceIndex) return;
  const faces = answer.photos.map((photo) => photo.face);
  faces[photoIndex] = faceIndex;
  await uploadPhotos(files, faces);
}

// ---- secure context ------------------------------------------------------------------------

// Browsers give the camera only to secure pages: https, or http on localhost. Anywhere else
// navigator.mediaDevices is missing, and a call could only fail with a confusing error.
function checkSecureContext() {
  if (window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return true;
  const https = `https://${location.hostname}${location.pathname}${location.search}`;
  const local = `http://localhost${location.port ? `:${location.port}` : ""}/`;
  state.insecure = true;
  const banner = $("insecure");
  banner.querySelector(".https-url").textContent = https;
  banner.querySelector(".https-url").href = https;
  banner.querySelector(".local-url").textContent = local;
  banner.classList.remove("hidden");
  say(`Use https: browsers only give the camera to pages opened over https (or on localhost). Open ${https} `
      + "instead (the server needs a certificate, see the README's Deployment section).", true);
  setBadge("error", "needs https");
  $("start").disabled = true;
  $("create-room").disabled = true;
  return false;
}

// ---- call ----------------------------------------------------------------------------------

// The ICE servers for one call: config.js's own, or the server's with TURN credentials made for this call.
async function iceServers() {
  if (Array.isArray(config.iceServers)) return config.iceServers;
  try {
    const response = await fetch("/api/ice-servers", { cache: "no-store" });
    if (response.ok) return (await response.json()).iceServers;
  } catch (_) { /* unreachable: the offer below reports it */ }
  return [];  // host candidates only: fine on a LAN
}

function waitForIceGathering(pc, timeoutMs = 3000) {
  // The server takes the offer with all candidates in it (no trickle ICE).
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function cameraErrorText(error) {
  if (error.name === "NotAllowedError") return "Camera access was denied. Allow the camera for this site in your browser, then press Start again.";
  if (error.name === "NotFoundError") return "No camera found. Connect a webcam and press Start again.";
  if (error.name === "NotReadableError") return "The camera is busy in another application.";
  return `Camera error: ${error.message || error.name}`;
}

function onStatus(message) {
  let data;
  try { data = JSON.parse(message.data); } catch (_) { return; }
  if (data.type === MESSAGE.ROSTER) { showRoster(data); return; }
  if (data.type === MESSAGE.CLOSED) { state.closedReason = data.reason; return; }
  if (data.type === MESSAGE.ROOM_CLOSED) { roomClosed(data.reason); return; }
  if (data.type === MESSAGE.ROOM_STATUS) { roomStatus(data); return; }
  if (data.type === MESSAGE.STATUS) {
    state.lastStatus = data;
    $("noface").classList.toggle("hidden", data.face_found);
    if (state.connected) setBadge(data.face_found ? "live" : "warn", data.face_found ? "live" : "no face found");
    $("stat-server").textContent = data.server_ms == null ? "–" : `${data.server_ms.toFixed(1)} ms`;
    $("stat-calibrated").textContent = data.calibrated ? "yes" : "no (press Calibrate)";
  }
}

async function start() {
  if (state.insecure) return;
  $("start").disabled = true;
  state.error = null;
  state.closedReason = null;
  setBadge("connecting");
  say("Starting camera…");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } }, audio: false,
    });
  } catch (error) {
    say(cameraErrorText(error), true);
    setBadge("error", error.name === "NotAllowedError" ? "camera blocked" : "no camera");
    $("start").disabled = false;
    return;
  }
  $("local").srcObject = state.stream;
  say("Connecting…");
  $("hangup").disabled = false;  // a call that never connects can still be abandoned

  const pc = new RTCPeerConnection({
    iceServers: await iceServers(), iceTransportPolicy: RELAY_ONLY ? "relay" : "all",
  });
  state.pc = pc;
  const channel = pc.createDataChannel(CHANNEL_LABEL);  // before the offer, so the offer negotiates SCTP
  state.channel = channel;
  channel.onmessage = onStatus;
  channel.onclose = () => {
    // Our own hang-up detaches this handler first; anything else means the server closed the session.
    if (state.pc === pc && state.sessionId) serverEnded();
  };
  const own = pc.addTransceiver(state.stream.getVideoTracks()[0], { direction: "sendrecv" });
  if (state.room && !state.sfu) {
    // One receive-only tile per possible other participant; the server fills them as people join.
    for (let i = 0; i < state.roomSize - 1; i += 1) pc.addTransceiver("video", { direction: "recvonly" });
  }
  pc.ontrack = (event) => {
    const stream = new MediaStream([event.track]);
    if (event.transceiver === own) $("remote").srcObject = stream;
    else addTile(event.transceiver.mid, stream);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") {
      state.connected = true; setBadge("live"); say("Live. Press Calibrate while holding a neutral face.");
    } else if (pc.connectionState === "failed") {
      state.connected = false;
      say("The connection failed (network or firewall blocks the media, or the server went away). "
          + "Hang up and try again.", true);
      setBadge("error", "failed");
    } else if (pc.connectionState === "disconnected") {
      setBadge("connecting", "reconnecting");
    }
  };

  try {
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    state.ownMid = own.mid;
    const url = state.room ? `/api/rooms/${state.room}/join` : "/api/offer";
    const send = () => fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", target: state.target, size: state.size,
                             name: $("name").value || "Guest" }),
    });
    let response = await send();
    // 503 + Retry-After: the server is at its measured capacity; wait as told and offer again until admitted.
    while (response.status === 503 && response.headers.get("Retry-After") && state.pc === pc) {
      const text = await errorText(response);
      for (let left = Math.max(1, parseInt(response.headers.get("Retry-After"), 10) || 5); left > 0; left--) {
        if (state.pc !== pc) return;  // hung up while waiting
        setBadge("connecting", `busy, retrying in ${left} s`);
        say(`The server is busy (${text}). Retrying in ${left} s…`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      if (state.pc !== pc) return;
      response = await send();
    }
    if (!response.ok) {
      const text = await errorText(response);
      if (response.status === 503) { setBadge("error", "server full"); throw new Error(`Cannot start the call: ${text}.`); }
      if (response.status === 409) { setBadge("error", "room full"); throw new Error(`Cannot join: ${text}.`); }
      throw new Error(`The server refused the call: ${text}`);
    }
    const answer = await response.json();
    if (state.pc !== pc) {
      // Hung up while the offer was in flight: close the session the server has just opened.
      fetch(`/api/sessions/${answer.session_id}`, { method: "DELETE", headers: { Authorization: `Bearer ${answer.token}` } })
        .catch(() => {});
      return;
    }
    state.sessionId = answer.session_id;
    state.token = answer.token;
    showServerInfo(answer.server);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  } catch (error) {
    if (state.pc !== pc) return;  // hung up meanwhile: that is not an error
    say(error.message, true);
    if (!$("badge").classList.contains("error")) setBadge("error", "not connected");
    await hangUp(false);
    return;
  }
  $("calibrate").disabled = false;
  statsTimer = setInterval(updateStats, 1000);
}

async function serverEnded() {
  state.sessionId = null;  // already gone on the server: no DELETE
  await hangUp(false);
  setBadge("error", "ended");
  const why = state.closedReason || "it restarted, or received no video from this page for a while";
  say(`The server ended the call (${why}). Press Start to call again.`, true);
}

async function calibrate() {
  if (!state.sessionId) return;
  const response = await fetch(`/api/sessions/${state.sessionId}/calibrate`, {
    method: "POST", body: "{}",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
  });
  say(response.ok ? "Calibrated: this is your neutral face now." : `Calibration failed: ${await errorText(response)}`, !response.ok);
}

async function hangUp(clearMessage = true) {
  // Detach the page from the call at once, so no late status message or stats tick repaints a call
  // that is over.
  clearInterval(statsTimer);
  const { pc, stream, channel } = state;
  const id = state.sessionId;
  const token = state.token;
  if (channel) { channel.onmessage = null; channel.onclose = null; }
  state.sessionId = null; state.pc = null; state.stream = null; state.channel = null;
  state.connected = false; state.roster = null; state.lastStatus = null; state.candidatePair = null;
  previousJitter = null;
  for (const feed of Object.keys(state.watches)) unwatch(feed, id, token);
  for (const tile of Object.values(state.tiles)) tile.figure.remove();
  state.tiles = {};
  updateRoomPanel();
  $("noface").classList.add("hidden");
  $("stat-calibrated").textContent = "–";
  $("stat-path").textContent = "–";
  $("start").disabled = false; $("calibrate").disabled = true; $("hangup").disabled = true;
  if (clearMessage) { setBadge("idle"); say("Call ended."); }
  if (id) {
    // Tell the server before closing the connection (else it may notice the closed connection first and
    // answer 404). keepalive: the DELETE still goes out when the page is being closed (beforeunload).
    await fetch(`/api/sessions/${id}`, {
      method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true,
    }).catch(() => {});
  }
  if (pc) pc.close();
  if (stream) stream.getTracks().forEach((track) => track.stop());
  $("local").srcObject = null; $("remote").srcObject = null;
}

// ---- rooms ---------------------------------------------------------------------------------

function addTile(mid, stream) {
  const figure = document.createElement("figure");
  figure.className = "tile hidden";
  figure.dataset.mid = mid;
  figure.innerHTML = `<video autoplay muted playsinline></video><figcaption></figcaption>`;
  const video = figure.querySelector("video");
  video.srcObject = stream;
  $("room-grid").append(figure);
  state.tiles[mid] = { figure, video, name: null };
}

function tileKey(participant) {
  return participant.mid || (participant.feed != null ? `feed:${participant.feed}` : null);
}

function showRoster(roster) {
  state.roster = roster;
  if (roster.sfu) syncWatches(roster);
  const shown = new Map(roster.participants.filter(tileKey).map((p) => [tileKey(p), p]));
  for (const [mid, tile] of Object.entries(state.tiles)) {
    const participant = shown.get(mid);
    tile.name = participant ? participant.name : null;
    tile.figure.classList.toggle("hidden", !participant);
    tile.figure.querySelector("figcaption").textContent = participant ? participant.name : "";
  }
  updateRoomPanel();
}

// ---- rooms through an SFU: each other participant's feed is watched on its own peer connection --------

async function syncWatches(roster) {
  const wanted = new Set(roster.participants.filter((p) => p.feed != null && p.id !== roster.you)
    .map((p) => String(p.feed)));
  for (const feed of Object.keys(state.watches)) if (!wanted.has(feed)) unwatch(feed, state.sessionId, state.token);
  for (const feed of wanted) {
    if (!state.watches[feed]) watch(Number(feed)).catch((error) => console.warn("watch", feed, error));
  }
}

async function watch(feed) {
  const headers = { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` };
  state.watches[feed] = { id: null, pc: null };  // claimed at once: the next roster must not watch it twice
  // The same ICE/TURN servers as the call: Janus's media may need the relay just as ours does.
  const servers = await iceServers();
  if (!state.watches[feed]) return;  // unwatched meanwhile
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: RELAY_ONLY ? "relay" : "all" });
  state.watches[feed].pc = pc;
  const response = await fetch(`/api/sessions/${state.sessionId}/watch`, {
    method: "POST", headers, body: JSON.stringify({ feed }),
  });
  if (!response.ok) {
    pc.close(); delete state.watches[feed];
    if (response.status === 404) setTimeout(() => state.roster && syncWatches(state.roster), 1000);  // not up yet
    throw new Error(await errorText(response));
  }
  const offer = await response.json();
  state.watches[feed].id = offer.watch_id;
  pc.ontrack = (event) => {
    if (!state.watches[feed] || state.watches[feed].pc !== pc) return;  // unwatched (left, hung up) meanwhile
    addTile(`feed:${feed}`, new MediaStream([event.track]));
    if (state.roster) showRoster(state.roster);  // names the new tile
  };
  await pc.setRemoteDescription({ type: offer.type, sdp: offer.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await waitForIceGathering(pc);
  const started = await fetch(`/api/sessions/${state.sessionId}/watch/${offer.watch_id}`, {
    method: "POST", headers, body: JSON.stringify({ type: "answer", sdp: pc.localDescription.sdp }),
  });
  if (!started.ok) {
    const text = await errorText(started);
    unwatch(feed, state.sessionId, state.token);  // the next roster (or the retry below) watches it afresh
    setTimeout(() => state.roster && syncWatches(state.roster), 1000);
    throw new Error(text);
  }
}

function unwatch(feed, sessionId, token) {
  const watched = state.watches[feed];
  delete state.watches[feed];
  if (!watched) return;
  if (watched.pc) watched.pc.close();
  const tile = state.tiles[`feed:${feed}`];
  if (tile) { tile.figure.remove(); delete state.tiles[`feed:${feed}`]; }
  if (watched.id && sessionId) {
    fetch(`/api/sessions/${sessionId}/watch/${watched.id}`, {
      method: "DELETE", headers: { Authorization: `Bearer ${token}` },
    }).catch(() => {});
  }
}

function roomStatus(data) {
  if (data.state === "reconnecting") {
    // The SFU restarted: these watches are dead. The next roster names the re-published feeds.
    for (const feed of Object.keys(state.watches)) unwatch(feed, null, null);
    say("The room service restarted: reconnecting the room…");
  } else if (data.state === "restored") {
    say("The room is back.");
  }
}

function roomClosed(reason) {
  for (const feed of Object.keys(state.watches)) unwatch(feed, null, null);
  state.roster = null;
  updateRoomPanel();
  say(`${reason || "the room has ended"}. Your own call goes on.`, true);
}

function updateRoomPanel() {
  const others = state.roster ? state.roster.participants.length - 1 : 0;
  $("room-panel").classList.toggle("hidden", !state.room);
  $("room-empty").classList.toggle("hidden", others > 0);
  $("room-count").textContent = state.roster ? `${state.roster.participants.length} / ${state.roomSize}` : "";
}

// Frames shown by each visible tile, by participant name (tests and the curious read this).
window.marionette.tileFrames = () => Object.fromEntries(Object.values(state.tiles).filter((t) => t.name)
  .map((t) => [t.name, t.video.getVideoPlaybackQuality().totalVideoFrames]));

function enterRoom(room) {
  state.room = room.room_id;
  state.roomSize = room.max_participants;
  state.sfu = room.sfu || null;
  history.replaceState(null, "", `?room=${room.room_id}`);
  $("share-link").value = new URL(room.join_url, location.origin).href;
  $("share").classList.remove("hidden");
  $("create-room").classList.add("hidden");
  $("start").textContent = "Join room";
  updateRoomPanel();
}

async function createRoom() {
  // JSON, like every API call that changes state (the server refuses other types: see its cross-site checks).
  const response = await fetch("/api/rooms", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
  });
  if (!response.ok) { say(`Could not create a room: ${await errorText(response)}`, true); return; }
  enterRoom(await response.json());
  say("Room created. Share the link, then press Join room.");
}

async function loadRoom() {
  const response = await fetch(`/api/rooms/${encodeURIComponent(state.room)}`);
  if (!response.ok) {
    say(`This room link does not work: ${await errorText(response)}`, true);
    state.room = null;
    history.replaceState(null, "", location.pathname);
    return;
  }
  enterRoom(await response.json());
}

// ---- stats ---------------------------------------------------------------------------------

async function updateStats() {
  if (!state.pc) return;
  const report = await state.pc.getStats();
  let inbound = null;
  let selectedPairId = null;
  const pairs = new Map();
  const candidates = new Map();
  report.forEach((s) => {
    if (s.type === "local-candidate" || s.type === "remote-candidate") candidates.set(s.id, s);
    // In a room there is one inbound video per tile: the avatar panel is our own transceiver's.
    if (s.type === "inbound-rtp" && s.kind === "video" && (!inbound || s.mid === state.ownMid)) inbound = s;
    if (s.type === "transport" && s.selectedCandidatePairId) selectedPairId = s.selectedCandidatePairId;
    if (s.type === "candidate-pair") pairs.set(s.id, s);
  });
  // The pair ICE actually uses; older browsers only mark it nominated.
  const pair = pairs.get(selectedPairId) || [...pairs.values()].find((s) => s.nominated && s.state === "succeeded");
  const rtt = pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null;
  showNetworkPath(pair && candidates.get(pair.localCandidateId), pair && candidates.get(pair.remoteCandidateId));

  let jitter = null;
  if (inbound) {
    state.framesDecoded = inbound.framesDecoded || 0;
    state.fps = inbound.framesPerSecond || 0;
    $("stat-fps").textContent = `${state.fps.toFixed(1)} fps`;
    $("stat-res").textContent = inbound.frameWidth ? `${inbound.frameWidth}×${inbound.frameHeight}` : "–";
    $("stat-decoded").textContent = String(state.framesDecoded);
    // jitterBufferDelay (s) and jitterBufferEmittedCount are totals since the start: use the last second's
    // share, so the figure follows the call now rather than its whole history.
    const delay = inbound.jitterBufferDelay || 0;
    const count = inbound.jitterBufferEmittedCount || 0;
    if (previousJitter && count > previousJitter.count) {
      jitter = (1000 * (delay - previousJitter.delay)) / (count - previousJitter.count);
    } else if (count) {
      jitter = (1000 * delay) / count;
    }
    previousJitter = { delay, count };
  }
  state.rttMs = rtt;
  state.jitterBufferMs = jitter;
  $("stat-rtt").textContent = rtt == null ? "–" : `${rtt.toFixed(1)} ms`;
  $("stat-jitter").textContent = jitter == null ? "–" : `${jitter.toFixed(1)} ms`;
  const server = state.lastStatus && state.lastStatus.server_ms;
  if (rtt != null && server != null && jitter != null) {
    // network round trip + server processing + receive jitter buffer (capture, encode, display excluded)
    state.estimatedLatencyMs = rtt + server + jitter;
    $("stat-latency").textContent = `≈ ${state.estimatedLatencyMs.toFixed(0)} ms`;
  }
}

// Which way the media flows: host (direct), srflx (through a NAT, found by STUN) or relay (through TURN).
function showNetworkPath(local, remote) {
  if (!local || !remote) return;
  const protocol = local.relayProtocol || local.protocol || "";
  state.candidatePair = { local: local.candidateType, remote: remote.candidateType, protocol };
  const relayed = local.candidateType === "relay" || remote.candidateType === "relay";
  $("stat-path").textContent = `${local.candidateType} ↔ ${remote.candidateType} (${protocol})`
    + (relayed ? " · TURN relay" : "");
}

// ---- wiring --------------------------------------------------------------------------------

// Hide a panel's placeholder while its video shows frames.
for (const id of ["local", "remote"]) {
  const video = $(id);
  video.addEventListener("loadeddata", () => video.parentElement.classList.add("streaming"));
  video.addEventListener("emptied", () => video.parentElement.classList.remove("streaming"));
}

$("start").addEventListener("click", start);
$("calibrate").addEventListener("click", calibrate);
$("hangup").addEventListener("click", () => hangUp());
$("create-room").addEventListener("click", createRoom);
$("copy-link").addEventListener("click", () => navigator.clipboard.writeText($("share-link").value).then(
  () => say("Link copied."), () => $("share-link").select()));
$("upload").addEventListener("change", (event) => { uploadPhotos([...event.target.files]); event.target.value = ""; });
window.addEventListener("beforeunload", () => { if (state.sessionId) hangUp(false); });

const secure = checkSecureContext();
// A link never starts the camera or a call by itself (a page elsewhere could send people to one): a room link
// only fills in the room, and the call starts with a click on Join room.
Promise.all([loadTargets(), state.room ? loadRoom() : null]).then(() => {
  if (params.get("name")) $("name").value = params.get("name");
  if (secure && state.room) $("start").focus();
});
