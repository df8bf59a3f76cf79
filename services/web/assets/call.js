// Voice and video calls: the room header's call buttons, the "Incoming call" dialog (shown
// whatever screen is open), the call itself (local and remote media, mute, camera, hang up,
// each connection's state) and the calls' history text in a room's timeline.
//
// The engine only relays signaling (`call_*` WebSocket frames); media flows between browsers
// over WebRTC, as a mesh: whoever joins a call offers a connection to each participant already
// in it, the others answer the offers they get. ICE candidates trickle both ways.

import { el } from "./dom.js";
import { displayName, emit, nameWithCompany, on, roomTitle, state } from "./state.js";

/** How long after a call frame was sent an error frame is taken as its refusal. */
const ANSWER_WINDOW_MS = 10_000;
/** How long "Answered on another device" stays before it goes by itself. */
const ELSEWHERE_SHOWN_MS = 15_000;

const MEDIA_NAMES = { audio: "Audio call", video: "Video call" };

/** What each `RTCPeerConnection.connectionState` is shown as. */
const CONNECTION_TEXT = {
  new: "Connecting…",
  connecting: "Connecting…",
  connected: "Connected",
  disconnected: "Reconnecting…",
  failed: "Connection failed",
  closed: "Left",
};

/** The call side of the page, forgotten at logout (`resetCalls`). */
function fresh() {
  return {
    /** room id -> the room's call as the last `call` frame showed it. */
    views: new Map(),
    /** call id -> the highest `rev` seen: an older view (read at connect, overtaken by a push)
     * is dropped. */
    revs: new Map(),
    /** call id -> {roomId, view, phase: "ringing" | "accepting" | "elsewhere" | "missed", error}:
     * calls ringing (or that rang) for this user, shown as "Incoming call" dialogs. */
    incoming: new Map(),
    /** A call frame sent, waiting for `call_joined`: {kind: "start"|"accept"|"join", roomId,
     * callId?, media, stream}. */
    awaiting: null,
    /** The call this device is in (or was, until its screen is closed); see `startActive`. */
    active: null,
    /** When a call frame was last sent: refusals (error frames naming a room) come soon after. */
    lastSentAt: 0,
    /** room id -> the refusal or failure shown beside that room's call buttons. */
    headerErrors: new Map(),
    /** A message about calls shown over any screen (a refusal, a failure). */
    notice: "",
    /** Calls this device declined: a late frame still ringing does not bring them back. */
    declined: new Set(),
    /** The drawn incoming dialogs and notice: key -> {sig, node} (re-used while unchanged, so
     * a focused button keeps its focus). */
    drawn: new Map(),
  };
}

let calls = fresh();

// rooms.js learns names for us and says when it did.
on("names-learnt", () => render());

function me() {
  return state.me?.id;
}

function mediaName(media) {
  return MEDIA_NAMES[media] || "Call";
}

/** m:ss (h:mm:ss past an hour). */
export function clock(ms) {
  const total = Math.max(0, Math.round((ms || 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

function send(frame) {
  calls.lastSentAt = Date.now();
  return Boolean(state.live && state.live.send(frame));
}

function frameText(frame) {
  return frame.message ? `${frame.message} (${frame.code})` : String(frame.code || "refused");
}

/** Why the camera or microphone could not be used, for people. */
function mediaErrorText(err, media) {
  const what = media === "video" ? "camera and microphone" : "microphone";
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return `The browser did not allow the ${what}: allow them for this site and try again.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No ${what} was found on this device.`;
    case "NotReadableError":
    case "AbortError":
      return `The ${what} could not be started: another program may be using them.`;
    default:
      return `The ${what} could not be used: ${(err && err.message) || err}.`;
  }
}

async function getMedia(media) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("this browser (or an address that is not https) gives no camera or microphone"), { name: "NotSupportedError" });
  }
  return navigator.mediaDevices.getUserMedia({ audio: true, video: media === "video" });
}

function stopStream(stream) {
  for (const track of stream?.getTracks() || []) track.stop();
}

function liveView(view) {
  return view && view.status !== "ended";
}

// ----- the room header's buttons -----

/** The call buttons of a room's header: Audio call, Video call (none in rooms with LINE
 * users: the engine refuses calls there), or Join call while the room has a call this device
 * is not in. Kept up to date by this module while the room is open. */
export function callButtons(room) {
  const box = el("div", { id: "call-buttons", class: "call-buttons", "data-room": room.id });
  fillCallButtons(box);
  // The call's screen offers "Open room" only while another room is open.
  queueMicrotask(render);
  return box;
}

function fillCallButtons(box) {
  const roomId = box.dataset.room;
  const room = state.rooms.get(roomId);
  const error = el("p", { id: "call-error", class: "error", role: "alert" }, calls.headerErrors.get(roomId) || "");
  if (!room || (room.markers || []).includes("line")) {
    box.replaceChildren(error);
    return;
  }
  const view = calls.views.get(roomId);
  const inThisCall = calls.active && !calls.active.over && calls.active.roomId === roomId;
  const busy = calls.awaiting && calls.awaiting.roomId === roomId;
  const buttons = [];
  if (inThisCall) {
    buttons.push(el("span", { class: "call-here" }, "In call"));
  } else if (liveView(view)) {
    const mine = view.participants.some((p) => p.user === me());
    const ringingHere = view.ringing.includes(me());
    if (!mine && !ringingHere) {
      buttons.push(
        el("span", { class: "call-here" }, `${mediaName(view.media)} going on`),
        el("button", { type: "button", disabled: busy, onclick: () => joinCall(roomId, view) }, "Join call"),
      );
    } else if (mine) {
      // call_join from this device moves the user's place in the call here.
      buttons.push(
        el("span", { class: "call-here" }, "In call on another device"),
        el("button", { type: "button", disabled: busy, onclick: () => joinCall(roomId, view) }, "Join here"),
      );
    }
  } else {
    buttons.push(
      el("button", { type: "button", disabled: busy, onclick: () => startCall(roomId, "audio") }, "Audio call"),
      el("button", { type: "button", disabled: busy, onclick: () => startCall(roomId, "video") }, "Video call"),
    );
  }
  box.replaceChildren(...buttons, error);
}

function renderCallButtons() {
  const box = document.getElementById("call-buttons");
  if (box) fillCallButtons(box);
}

// ----- starting, answering, joining -----

/** Leave the call this device is in (to take another). */
function leaveCurrent() {
  if (calls.active && !calls.active.over) hangUp();
}

async function startCall(roomId, media) {
  calls.headerErrors.delete(roomId);
  if (calls.awaiting) return;
  calls.awaiting = { kind: "start", roomId, media, stream: null };
  render();
  let stream;
  try {
    stream = await getMedia(media);
  } catch (err) {
    calls.awaiting = null;
    calls.headerErrors.set(roomId, mediaErrorText(err, media));
    render();
    return;
  }
  leaveCurrent();
  calls.awaiting.stream = stream;
  if (!send({ type: "call_start", room_id: roomId, media })) {
    awaitingFailed("Not connected to the engine; try again in a moment.");
  }
}

async function acceptCall(callId) {
  const ring = calls.incoming.get(callId);
  if (!ring || ring.phase !== "ringing" || calls.awaiting) return;
  ring.phase = "accepting";
  ring.error = "";
  render();
  let stream;
  try {
    stream = await getMedia(ring.view.media);
  } catch (err) {
    ring.phase = "ringing";
    ring.error = mediaErrorText(err, ring.view.media);
    render();
    return;
  }
  // It may have stopped ringing while the browser asked for the camera.
  if (calls.incoming.get(callId) !== ring || ring.phase !== "accepting") {
    stopStream(stream);
    return;
  }
  leaveCurrent();
  calls.awaiting = { kind: "accept", roomId: ring.roomId, callId, media: ring.view.media, stream };
  if (!send({ type: "call_accept", room_id: ring.roomId, call_id: callId })) {
    awaitingFailed("Not connected to the engine; try again in a moment.");
  }
}

function declineCall(callId) {
  const ring = calls.incoming.get(callId);
  if (!ring) return;
  calls.incoming.delete(callId);
  calls.declined.add(callId);
  if (!send({ type: "call_decline", room_id: ring.roomId, call_id: callId })) {
    calls.notice = "Not connected to the engine: the call was not declined.";
  }
  render();
}

async function joinCall(roomId, view) {
  if (calls.awaiting) return;
  calls.headerErrors.delete(roomId);
  calls.awaiting = { kind: "join", roomId, callId: view.call_id, media: view.media, stream: null };
  render();
  let stream;
  try {
    stream = await getMedia(view.media);
  } catch (err) {
    calls.awaiting = null;
    calls.headerErrors.set(roomId, mediaErrorText(err, view.media));
    render();
    return;
  }
  leaveCurrent();
  calls.awaiting.stream = stream;
  if (!send({ type: "call_join", room_id: roomId, call_id: view.call_id })) {
    awaitingFailed("Not connected to the engine; try again in a moment.");
  }
}

/** What this device asked for (start, accept, join) did not happen: say why. */
function awaitingFailed(text, code) {
  const awaiting = calls.awaiting;
  if (!awaiting) return;
  calls.awaiting = null;
  stopStream(awaiting.stream);
  const ring = awaiting.callId && calls.incoming.get(awaiting.callId);
  if (awaiting.kind === "accept" && ring) {
    if (code === "call_answered_elsewhere") ring.phase = "elsewhere";
    else {
      ring.phase = liveView(ring.view) && ring.view.ringing.includes(me()) ? "ringing" : "missed";
      ring.error = text;
    }
  } else if (awaiting.roomId === state.current && document.getElementById("call-buttons")) {
    calls.headerErrors.set(awaiting.roomId, text);
  } else {
    calls.notice = text;
  }
  render();
}

// ----- in the call -----

/**
 * This device is in the call (`call_joined`): its media, ICE servers, and one peer per other
 * participant (user id -> {pc, tile, media element, pendingIce, chain, makingOffer}).
 */
function startActive(frame) {
  const awaiting = calls.awaiting && calls.awaiting.roomId === frame.room_id ? calls.awaiting : null;
  if (awaiting) calls.awaiting = null;
  if (!awaiting || !awaiting.stream) {
    // Nothing asked for here (a stale answer): leave at once rather than sit in a call unseen.
    stopStream(awaiting?.stream);
    send({ type: "call_hangup", room_id: frame.room_id, call_id: frame.call_id });
    return;
  }
  calls.incoming.delete(frame.call_id);
  const view = calls.views.get(frame.room_id);
  calls.active = {
    roomId: frame.room_id,
    callId: frame.call_id,
    device: frame.device,
    media: awaiting.media,
    iceServers: (frame.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    stream: awaiting.stream,
    peers: new Map(),
    /** ICE candidates from users we have no connection with yet: user -> [candidate]. */
    earlyIce: new Map(),
    view: view && view.call_id === frame.call_id ? view : null,
    offered: false,
    answeredAt: null,
    muted: false,
    cameraOff: false,
    over: false,
    /** The text the call ended with, when over. */
    endText: "",
    error: "",
    timer: setInterval(() => updateTimer(), 1000),
    screen: null,
  };
  render();
  if (calls.active.view) offerToThoseAlreadyIn(calls.active.view);
}

/** The mesh rule: the device that joins offers a connection to each participant who was in the
 * call before it. */
function offerToThoseAlreadyIn(view) {
  const active = calls.active;
  if (!active || active.offered) return;
  active.offered = true;
  const mine = view.participants.find((p) => p.user === me());
  for (const p of view.participants) {
    if (p.user === me()) continue;
    if (mine && p.joined_at_ms > mine.joined_at_ms) continue; // they offer to us
    offerTo(p.user);
  }
}

function peerFor(user) {
  const active = calls.active;
  let peer = active.peers.get(user);
  if (peer) return peer;
  const pc = new RTCPeerConnection({ iceServers: active.iceServers });
  peer = { user, pc, pendingIce: active.earlyIce.get(user) || [], chain: Promise.resolve(), makingOffer: false, stream: null, tile: null, mediaEl: null };
  active.earlyIce.delete(user);
  active.peers.set(user, peer);
  for (const track of active.stream.getTracks()) pc.addTrack(track, active.stream);
  const callId = active.callId;
  const roomId = active.roomId;
  pc.addEventListener("icecandidate", (event) => {
    const c = event.candidate;
    if (!c || !c.candidate) return; // the end of candidates need not be sent
    const signal = { kind: "ice", candidate: c.candidate };
    if (c.sdpMid !== null && c.sdpMid !== undefined) signal.sdp_mid = c.sdpMid;
    if (c.sdpMLineIndex !== null && c.sdpMLineIndex !== undefined) signal.sdp_m_line_index = c.sdpMLineIndex;
    send({ type: "call_signal", room_id: roomId, call_id: callId, to: user, signal });
  });
  pc.addEventListener("track", (event) => {
    if (!peer.stream) peer.stream = event.streams[0] || new MediaStream();
    if (!event.streams[0]) peer.stream.addTrack(event.track);
    attachRemote(peer);
  });
  pc.addEventListener("connectionstatechange", () => {
    if (calls.active?.peers.get(user) !== peer) return;
    if (pc.connectionState === "connected" && !calls.active.answeredAt) calls.active.answeredAt = Date.now();
    render();
  });
  return peer;
}

function signalTo(peer, signal) {
  const active = calls.active;
  send({ type: "call_signal", room_id: active.roomId, call_id: active.callId, to: peer.user, signal });
}

/** Run `step` after the peer's earlier signaling steps (they must not interleave). */
function queue(peer, step) {
  peer.chain = peer.chain.then(step).catch((err) => {
    if (calls.active && calls.active.peers.get(peer.user) === peer) {
      calls.active.error = `The connection with ${displayName(peer.user)} failed: ${err.message || err}`;
      render();
    }
  });
}

function offerTo(user) {
  const peer = peerFor(user);
  render();
  queue(peer, async () => {
    peer.makingOffer = true;
    try {
      await peer.pc.setLocalDescription(await peer.pc.createOffer());
      signalTo(peer, { kind: "offer", sdp: peer.pc.localDescription.sdp });
    } finally {
      peer.makingOffer = false;
    }
  });
}

async function flushIce(peer) {
  const waiting = peer.pendingIce;
  peer.pendingIce = [];
  for (const candidate of waiting) await peer.pc.addIceCandidate(candidate).catch(() => {});
}

function onSignal(frame) {
  const active = calls.active;
  if (!active || active.over || active.callId !== frame.call_id) return;
  const signal = frame.signal || {};
  const from = frame.from;
  if (signal.kind === "ice") {
    if (!signal.candidate) return;
    const candidate = { candidate: signal.candidate, sdpMid: signal.sdp_mid ?? null, sdpMLineIndex: signal.sdp_m_line_index ?? null };
    const peer = active.peers.get(from);
    if (!peer) {
      if (!active.earlyIce.has(from)) active.earlyIce.set(from, []);
      active.earlyIce.get(from).push(candidate);
      return;
    }
    queue(peer, async () => {
      if (!peer.pc.remoteDescription) peer.pendingIce.push(candidate);
      else await peer.pc.addIceCandidate(candidate).catch(() => {});
    });
    return;
  }
  if (signal.kind === "offer") {
    const known = active.peers.get(from);
    // This client never renegotiates a connection: an offer on one already set up comes from
    // a new connection of that user (they moved the call to another device). It replaces it.
    if (known && known.pc.remoteDescription && known.pc.signalingState === "stable" && !known.makingOffer) closePeer(active, from);
    const peer = peerFor(from);
    render();
    queue(peer, async () => {
      // Both sides offered at once: the one with the greater user id gives way.
      const collision = peer.makingOffer || peer.pc.signalingState !== "stable";
      if (collision && me() < from) return;
      await peer.pc.setRemoteDescription({ type: "offer", sdp: signal.sdp });
      await flushIce(peer);
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      signalTo(peer, { kind: "answer", sdp: peer.pc.localDescription.sdp });
    });
    return;
  }
  if (signal.kind === "answer") {
    const peer = active.peers.get(from);
    if (!peer) return;
    queue(peer, async () => {
      if (peer.pc.signalingState !== "have-local-offer") return;
      await peer.pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
      await flushIce(peer);
    });
  }
}

function closePeer(active, user) {
  const peer = active.peers.get(user);
  if (!peer) return;
  active.peers.delete(user);
  peer.pc.close();
  if (peer.mediaEl) peer.mediaEl.srcObject = null;
  peer.tile?.remove();
}

/** The call is over for this device: connections closed, camera and microphone released; the
 * screen stays, saying how it ended, until it is closed. */
function finishActive(text) {
  const active = calls.active;
  if (!active || active.over) return;
  active.over = true;
  active.endText = text;
  clearInterval(active.timer);
  for (const user of [...active.peers.keys()]) closePeer(active, user);
  stopStream(active.stream);
  render();
}

function hangUp() {
  const active = calls.active;
  if (!active || active.over) return;
  const view = active.view;
  const cancel = view && view.status === "ringing" && view.started_by === me();
  send({ type: cancel ? "call_cancel" : "call_hangup", room_id: active.roomId, call_id: active.callId });
  active.leaving = true;
  finishActive(cancel ? "Call cancelled" : "You left the call");
}

function toggleMute() {
  const active = calls.active;
  if (!active || active.over) return;
  active.muted = !active.muted;
  for (const track of active.stream.getAudioTracks()) track.enabled = !active.muted;
  render();
}

function toggleCamera() {
  const active = calls.active;
  if (!active || active.over) return;
  active.cameraOff = !active.cameraOff;
  for (const track of active.stream.getVideoTracks()) track.enabled = !active.cameraOff;
  render();
}

function closeScreen() {
  const active = calls.active;
  if (active && !active.over) return;
  calls.active = null;
  render();
}

// ----- frames -----

/** How a call's end is told to this user. */
function endText(view) {
  const end = view.end || {};
  const caller = view.started_by === me();
  switch (end.reason) {
    case "completed":
      return `Call ended · ${clock(end.duration_ms)}`;
    case "revoked":
      return end.duration_ms === undefined ? "Call ended · access withdrawn" : `Call ended · ${clock(end.duration_ms)} · access withdrawn`;
    case "declined":
      return "Call declined";
    case "cancelled":
      return caller ? "Call cancelled" : "Missed call";
    case "missed":
      return caller ? "No answer" : "Missed call";
    default:
      return "Call ended";
  }
}

function onView(roomId, view) {
  calls.views.set(roomId, view);
  const meId = me();
  const mine = view.participants.find((p) => p.user === meId);
  const active = calls.active;

  // The call this device is in.
  if (active && active.callId === view.call_id && !active.over) {
    active.view = view;
    if (view.status === "ended") {
      finishActive(endText(view));
    } else if (!mine) {
      finishActive("You are no longer in this call");
    } else if (mine.device !== active.device) {
      finishActive("The call moved to another device");
    } else {
      if (view.status === "active" && !active.answeredAt && view.participants.length > 1) active.answeredAt = Date.now();
      offerToThoseAlreadyIn(view);
      const present = new Set(view.participants.map((p) => p.user));
      for (const user of [...active.peers.keys()]) if (!present.has(user)) closePeer(active, user);
    }
  } else if (active && active.over && active.callId === view.call_id && view.status === "ended" && active.leaving) {
    // We hung up; now the engine says how the call ended.
    active.endText = endText(view);
  }

  // Ringing for this user.
  const awaitingThis = calls.awaiting && calls.awaiting.callId === view.call_id;
  const ring = calls.incoming.get(view.call_id);
  const inItHere = active && active.callId === view.call_id;
  if (liveView(view) && view.ringing.includes(meId) && !inItHere && !calls.declined.has(view.call_id)) {
    if (!ring) {
      calls.incoming.set(view.call_id, { roomId, view, phase: "ringing", error: "" });
      emit("names-wanted", [view.started_by]);
    } else ring.view = view;
  } else if (ring) {
    ring.view = view;
    if (awaitingThis) {
      // Our accept is on its way; `call_joined` or a refusal settles it.
    } else if (ring.phase === "ringing" || ring.phase === "accepting") {
      if (view.status === "ended") ring.phase = "missed";
      else if (mine) {
        ring.phase = "elsewhere";
        setTimeout(() => {
          if (calls.incoming.get(view.call_id) === ring && ring.phase === "elsewhere") {
            calls.incoming.delete(view.call_id);
            render();
          }
        }, ELSEWHERE_SHOWN_MS);
      } else calls.incoming.delete(view.call_id); // declined on another device
    }
  }

  if (view.status === "ended") calls.views.delete(roomId);
  render();
}

/**
 * Frames for calls: `call`, `call_joined`, `call_signal`, and error frames answering a call
 * frame this page sent; true when the frame was one of those. A `call_ended` room event (a
 * sync after a dropped connection brings it) ends the call here too; it is left to the room's
 * timeline as well (false).
 */
export function onCallFrame(frame) {
  if (!state.me) return false;
  switch (frame.type) {
    case "call": {
      const view = frame.call;
      if (!view) return true;
      const seen = calls.revs.get(view.call_id);
      if (seen !== undefined && Number.isInteger(view.rev) && view.rev < seen) return true; // stale
      if (Number.isInteger(view.rev)) {
        if (calls.revs.size >= 256) calls.revs.clear();
        calls.revs.set(view.call_id, view.rev);
      }
      onView(frame.room_id, view);
      return true;
    }
    case "call_joined":
      startActive(frame);
      return true;
    case "call_signal":
      onSignal(frame);
      return true;
    case "error":
      // A call frame's refusal names its room (and call); other errors are not ours.
      if (frame.client_msg_id || !frame.room_id || Date.now() - calls.lastSentAt > ANSWER_WINDOW_MS) return false;
      if (calls.awaiting) awaitingFailed(frameText(frame), frame.code);
      else if (calls.active && !calls.active.over) {
        calls.active.error = frameText(frame);
        render();
      } else {
        calls.notice = frameText(frame);
        render();
      }
      return true;
    case "room_event": {
      const event = frame.event || {};
      const active = calls.active;
      if (event.type === "call_ended" && active && !active.over && active.callId === event.call_id) {
        finishActive(endText({ started_by: event.by, end: { reason: event.reason, duration_ms: event.duration_ms } }));
      }
      return false;
    }
    default:
      return false;
  }
}

/** Logging out: leave the call, release the camera, forget every call. */
export function resetCalls() {
  if (calls.active && !calls.active.over) hangUp();
  stopStream(calls.awaiting?.stream);
  if (calls.active) clearInterval(calls.active.timer);
  calls = fresh();
  document.getElementById("calls")?.remove();
}

// ----- the history in a room's timeline -----

/** A `call_started` or `call_ended` room event as text (null for other events). */
export function callEventText(event) {
  const media = event.media === "audio" ? "audio" : "video";
  const Media = mediaName(event.media);
  const by = event.by === me() ? "You" : displayName(event.by);
  if (event.type === "call_started") return `${by} started ${media === "audio" ? "an" : "a"} ${media} call`;
  if (event.type !== "call_ended") return null;
  const caller = event.by === me();
  const missedByMe = (event.missed || []).includes(me());
  switch (event.reason) {
    case "completed":
    case "revoked": {
      if (missedByMe) return `Missed ${media} call from ${by}`;
      const withdrawn = event.reason === "revoked" ? " · access withdrawn" : "";
      return event.duration_ms === undefined ? `${Media}${withdrawn || " · ended"}` : `${Media} · ${clock(event.duration_ms)}${withdrawn}`;
    }
    case "declined":
      return caller ? `${Media} · declined` : `Declined ${media} call from ${by}`;
    case "cancelled":
      return caller ? `${Media} · cancelled` : `Missed ${media} call from ${by}`;
    case "missed":
      return caller ? `${Media} · no answer` : `Missed ${media} call from ${by}`;
    default:
      return `${Media} ended`;
  }
}

// ----- the screen -----

function callsBox() {
  let box = document.getElementById("calls");
  if (!box) {
    box = el("div", { id: "calls", class: "calls" });
    document.body.append(box);
  }
  return box;
}

function incomingDialog(callId, ring) {
  const view = ring.view;
  const room = state.rooms.get(ring.roomId);
  const titleId = `incoming-${callId}-title`;
  const caller = nameWithCompany(view.started_by);
  const oneToOne = room && ["direct", "external_direct"].includes(room.kind);
  const heading = { ringing: "Incoming call", accepting: "Incoming call", elsewhere: "Call answered", missed: "Missed call" }[ring.phase];
  const phaseText = { ringing: "Ringing…", accepting: "Connecting…", elsewhere: "Answered on another device" }[ring.phase];
  const buttons =
    ring.phase === "ringing" || ring.phase === "accepting"
      ? [
        el("button", { type: "button", class: "accept", disabled: ring.phase === "accepting", onclick: () => acceptCall(callId) }, "Accept"),
        el("button", { type: "button", class: "danger", disabled: ring.phase === "accepting", onclick: () => declineCall(callId) }, "Decline"),
      ]
      : [el("button", { type: "button", onclick: () => {
        calls.incoming.delete(callId);
        render();
      } }, "Dismiss")];
  return el(
    "section",
    { class: `incoming ${ring.phase}`, role: "dialog", "aria-labelledby": titleId, "data-call-id": callId, "data-room": ring.roomId },
    el("h2", { id: titleId }, heading),
    el("p", { class: "caller" }, `${mediaName(view.media)} from ${caller}`),
    room && !oneToOne ? el("p", { class: "call-room" }, `in ${roomTitle(room)}`) : null,
    phaseText ? el("p", { class: "call-state", role: "status" }, phaseText) : null,
    ring.error ? el("p", { class: "error", role: "alert" }, ring.error) : null,
    el("div", { class: "call-controls" }, ...buttons),
  );
}

/** The active call's text: Calling…, Connecting…, Connected, or how it ended. */
function activeText(active) {
  if (active.over) return active.endText;
  const view = active.view;
  if (view && view.status === "ringing" && view.started_by === me()) return "Calling…";
  if (view && view.status === "ringing") return "Connecting…";
  const states = [...active.peers.values()].map((p) => p.pc.connectionState);
  if (states.includes("connected")) return "Connected";
  if (states.length > 0 && states.every((s) => s === "failed")) return "Connection failed";
  return "Connecting…";
}

function updateTimer() {
  const timer = document.getElementById("call-timer");
  const active = calls.active;
  if (!timer || !active) return;
  timer.textContent = active.answeredAt && !active.over ? clock(Date.now() - active.answeredAt) : "";
}

function localTile(active) {
  const video = active.media === "video";
  const tile = el(
    "figure",
    { class: "tile local", "data-user": me() },
    video ? el("video", { class: "local", autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera" }) : el("div", { class: "avatar", "aria-hidden": "true" }, initials(displayName(me()))),
    el("figcaption", {}, el("span", { class: "who" }, "You"), el("span", { class: "tile-state" })),
  );
  const media = tile.querySelector("video");
  if (media) {
    media.muted = true; // never hear oneself
    media.srcObject = active.stream;
    media.play().catch(() => {});
  }
  return tile;
}

function initials(name) {
  return String(name || "?").split(/[\s@]+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

function remoteTile(active, peer) {
  const name = nameWithCompany(peer.user);
  const video = active.media === "video";
  peer.mediaEl = video
    ? el("video", { class: "remote", autoplay: true, playsinline: true, "aria-label": `${name}'s camera`, "data-user": peer.user })
    : el("audio", { class: "remote", autoplay: true, "data-user": peer.user });
  peer.tile = el(
    "figure",
    { class: "tile remote", "data-user": peer.user },
    video ? null : el("div", { class: "avatar", "aria-hidden": "true" }, initials(displayName(peer.user))),
    peer.mediaEl,
    el("figcaption", {}, el("span", { class: "who" }, name), el("span", { class: "tile-state" })),
  );
  attachRemote(peer);
  return peer.tile;
}

function attachRemote(peer) {
  if (!peer.mediaEl || !peer.stream || peer.mediaEl.srcObject === peer.stream) return;
  peer.mediaEl.srcObject = peer.stream;
  peer.mediaEl.play().catch(() => {});
}

function updateTile(peer) {
  const s = peer.pc.connectionState;
  peer.tile.dataset.connectionState = s;
  peer.tile.querySelector(".who").textContent = nameWithCompany(peer.user);
  peer.tile.querySelector(".tile-state").textContent = ` · ${CONNECTION_TEXT[s] || s}`;
}

/** The call's screen, built once per call (its media elements keep playing) and updated. */
function callScreen(active) {
  if (!active.screen) {
    const room = state.rooms.get(active.roomId);
    const s = {};
    s.title = el("h2", { id: "call-title" });
    s.timer = el("span", { id: "call-timer", class: "call-timer", "aria-label": "Call time" });
    s.status = el("p", { id: "call-state", class: "call-state", role: "status" });
    s.error = el("p", { id: "call-alert", class: "error", role: "alert" });
    s.local = localTile(active);
    s.tiles = el("div", { class: "tiles" }, s.local);
    s.mute = el("button", { type: "button", onclick: toggleMute }, "Mute");
    s.camera = active.media === "video" ? el("button", { type: "button", onclick: toggleCamera }, "Camera off") : null;
    s.hangUp = el("button", { type: "button", class: "danger", onclick: hangUp }, "Hang up");
    s.close = el("button", { type: "button", onclick: closeScreen }, "Close");
    s.open = el("button", { type: "button", class: "link", onclick: () => emit("room-open-requested", active.roomId) }, "Open room");
    s.controls = el("div", { class: "call-controls", role: "group", "aria-label": "Call controls" }, s.mute, s.camera, s.hangUp, s.close, s.open);
    s.root = el(
      "section",
      { id: "call", class: `call ${active.media}`, role: "region", "aria-labelledby": "call-title", "data-call-id": active.callId, "data-room": active.roomId },
      el("div", { class: "call-head" }, s.title, s.timer),
      s.status,
      s.error,
      s.tiles,
      s.controls,
    );
    s.roomTitle = () => (room ? roomTitle(room) : "");
    active.screen = s;
  }
  const s = active.screen;
  s.title.textContent = `${mediaName(active.media)} · ${s.roomTitle()}`;
  s.status.textContent = activeText(active);
  s.root.dataset.status = active.over ? "ended" : active.view?.status || "joining";
  s.error.textContent = active.error;
  s.mute.textContent = active.muted ? "Unmute" : "Mute";
  s.mute.setAttribute("aria-pressed", String(active.muted));
  if (s.camera) {
    s.camera.textContent = active.cameraOff ? "Camera on" : "Camera off";
    s.camera.setAttribute("aria-pressed", String(active.cameraOff));
  }
  for (const button of [s.mute, s.camera, s.hangUp]) if (button) button.hidden = active.over;
  s.close.hidden = !active.over;
  s.open.hidden = state.current === active.roomId;
  if (active.over) {
    s.local.remove();
    s.tiles.hidden = true;
  } else {
    s.local.querySelector(".tile-state").textContent = active.muted ? " · muted" : "";
    s.local.classList.toggle("camera-off", active.cameraOff);
    for (const peer of active.peers.values()) {
      if (!peer.tile) s.tiles.append(remoteTile(active, peer));
      updateTile(peer);
    }
  }
  updateTimer();
  return s.root;
}

/** Draw the call side of the page: the incoming dialogs, the call, the notice, the header's
 * buttons. Nodes are re-used while what they show is unchanged (a focused button keeps its
 * focus; the call's media elements are never re-made). */
function render() {
  if (!state.me) return;
  const nodes = [];
  const drawn = new Map();
  const keep = (key, sig, make) => {
    let entry = calls.drawn.get(key);
    if (!entry || entry.sig !== sig) entry = { sig, node: make() };
    drawn.set(key, entry);
    nodes.push(entry.node);
  };
  for (const [callId, ring] of calls.incoming) {
    const room = state.rooms.get(ring.roomId);
    const sig = JSON.stringify([ring.phase, ring.error, ring.view.media, nameWithCompany(ring.view.started_by), room ? roomTitle(room) : ""]);
    keep(`ring ${callId}`, sig, () => incomingDialog(callId, ring));
  }
  if (calls.active) nodes.push(callScreen(calls.active));
  if (calls.notice) {
    keep("notice", calls.notice, () =>
      el(
        "div",
        { class: "call-notice", role: "alert" },
        el("span", {}, calls.notice),
        el("button", { type: "button", class: "link", onclick: () => {
          calls.notice = "";
          render();
        } }, "Dismiss"),
      ));
  }
  calls.drawn = drawn;
  const box = callsBox();
  const focused = document.activeElement;
  nodes.forEach((node, i) => {
    if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null);
  });
  while (box.children.length > nodes.length) box.lastElementChild.remove();
  // A focused button that went (a dialog answered): focus the next thing to do.
  if (focused && focused !== document.body && !focused.isConnected) box.querySelector("button:not([disabled]):not([hidden])")?.focus();
  box.hidden = nodes.length === 0;
  renderCallButtons();
}
