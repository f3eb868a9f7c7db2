// The demo page: microphone or audio file in, face out, over protocol v2.

import {
  Audio2FaceClient,
  FrameTimeline,
  defaultUrl,
  floatToInt16,
  startMicrophone,
} from "./audio2face.js";
import { FaceInput, drawFace } from "./face.js";
import { ChannelPlot } from "./plot.js";

const WIRE_RATE = 16000;
const SEND_CHUNK_S = 0.5; // a file goes to the server in messages of this much audio
const PREROLL_S = 0.25; // frames held before a file starts playing
const EMOTION_RAMP_S = 0.3;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), profile: $("profile"), emotion: $("emotion"), intensity: $("intensity"),
  token: $("token"), tokenLabel: $("token-label"), mic: $("mic"), file: $("file"),
  interrupt: $("interrupt"), vrmFile: $("vrm-file"), face: $("face"), vrm: $("vrm"),
  plot: $("plot"), latency: $("latency"), frames: $("frames"), stream: $("stream"), drop: $("drop"),
};

const state = {
  info: null,
  client: null,
  ready: null,
  timeline: null,
  faceInput: new FaceInput([]),
  mode: "idle", // idle | mic | file | live (after an interrupt)
  mic: null,
  flushedFrames: null, // the last flushed message's count
  sends: [], // [samples sent so far, performance.now()] for the latency readout
  latencyMs: null,
  player: null, // {context, source, startAt}
  plotNext: 0,
  vrmView: null,
  frozen: false, // a2fDemo.renderFrame() holds its frame on screen
};
const plot = new ChannelPlot(ui.plot, 5);

function setStatus(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", isError);
}

function token() {
  return ui.token.value.trim() || new URLSearchParams(location.search).get("access_token") || "";
}

// --- what the server offers -------------------------------------------------------------

async function loadInfo() {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const response = await fetch("/api/v2/info", { headers });
  if (response.status === 401) {
    ui.tokenLabel.hidden = false;
    setStatus("this service needs a token: enter it above", true);
    return;
  }
  if (!response.ok) {
    setStatus(`the service is not ready (${response.status}); retrying`, true);
    setTimeout(loadInfo, 1000);
    return;
  }
  state.info = await response.json();
  ui.tokenLabel.hidden = !state.info.auth;
  ui.profile.replaceChildren(
    ...state.info.profiles.map((p) => new Option(`${p.name} (${p.names.length} channels)`, p.name)),
  );
  ui.profile.value = state.info.default_profile;
  fillEmotions();
  setStatus("ready: press Microphone, or drop an audio file");
}

function currentProfile() {
  return state.info && state.info.profiles.find((p) => p.name === ui.profile.value);
}

function fillEmotions() {
  const profile = currentProfile();
  const emotions = profile ? profile.emotions : [];
  ui.emotion.replaceChildren(new Option("neutral", ""), ...emotions.map((e) => new Option(e, e)));
  ui.emotion.disabled = emotions.length === 0;
  ui.emotion.title = emotions.length ? "" : "this profile has no emotion presets";
}

function chosenEmotion() {
  const name = ui.emotion.value;
  return name ? { name, intensity: Number(ui.intensity.value) } : null;
}

// --- one stream ---------------------------------------------------------------------------

async function openStream() {
  await stopAll();
  const client = new Audio2FaceClient(defaultUrl(), { token: token() || undefined });
  const ready = await client.connect({
    sampleRate: WIRE_RATE, profile: ui.profile.value, output: "binary", emotion: chosenEmotion(),
  });
  state.client = client;
  state.ready = ready;
  state.timeline = new FrameTimeline(ready.names, ready.fps);
  state.faceInput = new FaceInput(ready.names);
  state.sends = [];
  state.flushedFrames = null;
  state.latencyMs = null;
  state.plotNext = 0;
  plot.setNames(ready.names, ready.fps);
  ui.stream.textContent = `${ready.profile} · ${ready.engine} · ${ready.fps} fps · look-ahead ${Math.round(ready.lookahead_ms)} ms`;
  ui.interrupt.disabled = false;
  client.addEventListener("frames", (e) => onFrames(e.detail));
  client.addEventListener("interrupted", (e) => setStatus(`interrupted at frame ${e.detail.frame}`));
  client.addEventListener("flushed", (e) => { state.flushedFrames = e.detail.frames; });
  client.addEventListener("error", (e) => setStatus(`server: ${e.detail.message}`, true));
  client.addEventListener("close", (e) => {
    if (state.client === client) {
      ui.interrupt.disabled = true;
      if (e.detail.code !== 1000) setStatus(`stream closed (${e.detail.code}) ${e.detail.reason}`, true);
    }
  });
  if (!state.faceInput.supported && !state.vrmView) {
    setStatus(`the built-in face needs ARKit or VRM names; ${ready.profile} is plotted only`);
  }
  return client;
}

function onFrames(block) {
  state.timeline.add(block);
  ui.frames.textContent = String(block.first + block.count);
  if (state.mode !== "mic" || !state.ready) return;
  // Latency: the newest frame's arrival minus when the instant it shows was heard
  // (its chunk left the worklet at the chunk's end; earlier samples were heard earlier).
  const sample = ((block.first + block.count - 1) * WIRE_RATE) / state.ready.fps;
  const sent = state.sends.find(([samples]) => samples >= sample);
  if (sent) {
    const heardAt = sent[1] - ((sent[0] - sample) * 1000) / WIRE_RATE;
    const ms = block.receivedAt - heardAt;
    state.latencyMs = state.latencyMs === null ? ms : 0.8 * state.latencyMs + 0.2 * ms;
    ui.latency.textContent = `${Math.round(state.latencyMs)} ms`;
  }
  while (state.sends.length > 1 && state.sends[1][0] < sample) state.sends.shift();
}

async function stopAll() {
  const { client, mic, player } = state;
  state.mode = "idle";
  state.mic = null;
  state.player = null;
  ui.mic.classList.remove("active");
  if (mic) mic.stop();
  if (player) {
    player.source.onended = null;
    try { player.source.stop(); } catch { /* not started yet */ }
    player.context.close();
  }
  if (client && client.open) {
    try { await client.end(); } catch { /* the socket went first */ }
  }
}

// --- microphone -------------------------------------------------------------------------

async function toggleMic() {
  if (state.mode === "mic") {
    await stopAll();
    setStatus("microphone off");
    return;
  }
  try {
    const client = await openStream();
    let sent = 0;
    state.mic = await startMicrophone(client, {
      onChunk: (samples, at) => {
        sent += samples.length;
        state.sends.push([sent, at]);
      },
    });
    state.mode = "mic";
    ui.mic.classList.add("active");
    setStatus("listening: speak");
  } catch (err) {
    setStatus(`microphone: ${err.message}`, true);
  }
}

// --- audio file -------------------------------------------------------------------------

async function playFile(file) {
  try {
    const client = await openStream();
    setStatus(`decoding ${file.name}`);
    const context = new AudioContext();
    const decoded = await context.decodeAudioData(await file.arrayBuffer());
    // One resampling to the wire rate, by the browser's own high-quality resampler.
    const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * WIRE_RATE), WIRE_RATE);
    const src = offline.createBufferSource();
    src.buffer = decoded;
    src.connect(offline.destination);
    src.start();
    const pcm = floatToInt16((await offline.startRendering()).getChannelData(0));
    const step = Math.round(SEND_CHUNK_S * WIRE_RATE);
    for (let i = 0; i < pcm.length; i += step) client.sendAudio(pcm.subarray(i, i + step));
    client.flush();
    // Start the sound once the first frames are in; the face then follows its clock.
    const need = Math.min(Math.floor(PREROLL_S * state.ready.fps), Math.floor(decoded.duration * state.ready.fps));
    await new Promise((resolve) => {
      const check = () => (state.timeline.last + 1 >= need ? resolve() : setTimeout(check, 10));
      check();
    });
    const source = context.createBufferSource();
    source.buffer = decoded;
    source.connect(context.destination);
    const startAt = context.currentTime + 0.05;
    source.start(startAt);
    state.player = { context, source, startAt };
    state.mode = "file";
    setStatus(`playing ${file.name}`);
    source.onended = async () => {
      if (state.player && state.player.source === source) {
        await stopAll();
        setStatus("done: play another file or use the microphone");
      }
    };
  } catch (err) {
    setStatus(`audio file: ${err.message}`, true);
  }
}

function playbackTime() {
  const { context, startAt } = state.player;
  // What is heard now left the graph outputLatency seconds ago.
  return context.currentTime - startAt - (context.outputLatency || 0);
}

// --- VRM ----------------------------------------------------------------------------------

async function loadVrm(file) {
  try {
    setStatus(`loading ${file.name}`);
    if (!state.vrmView) {
      const { VrmView } = await import("./vrm-view.js");
      state.vrmView = new VrmView(ui.vrm);
    }
    await state.vrmView.load(file);
    ui.vrm.hidden = false;
    ui.face.hidden = true;
    // The vrm profile, unless another VRM profile is picked (vrm-head adds the gaze,
    // natural blinks and the head bone).
    const offered = new Set(state.info ? state.info.profiles.map((p) => p.name) : []);
    if (!ui.profile.value.startsWith("vrm") && offered.has("vrm")) {
      ui.profile.value = "vrm";
      fillEmotions();
    }
    setStatus(`${file.name}: ${state.vrmView.expressionNames().length} expressions; press Microphone or drop audio`);
  } catch (err) {
    setStatus(`VRM: ${err.message}`, true);
  }
}

// --- drawing --------------------------------------------------------------------------------

function currentValues() {
  const { timeline } = state;
  if (!timeline) return null;
  if (state.mode === "file" && state.player) return timeline.at(Math.max(0, playbackTime()));
  return timeline.latest();
}

function render(values, names = state.ready ? state.ready.names : []) {
  if (state.vrmView && !ui.vrm.hidden) {
    state.vrmView.apply(names, values);
    state.vrmView.render();
  } else {
    const ctx = ui.face.getContext("2d");
    drawFace(ctx, state.faceInput.reader(values), ui.face.width, ui.face.height);
  }
}

function tick() {
  if (!state.frozen) render(currentValues());
  const { timeline } = state;
  if (timeline && state.ready) {
    const upTo = state.mode === "file" && state.player ? Math.floor(playbackTime() * state.ready.fps) : timeline.last;
    for (; state.plotNext <= upTo; state.plotNext++) {
      const row = timeline.frame(state.plotNext);
      if (row) plot.push(row);
    }
    if (state.mode === "file" && state.player) {
      const ahead = (timeline.last + 1) / state.ready.fps - playbackTime();
      ui.latency.textContent = `frames ${ahead.toFixed(1)} s ahead of the sound`;
    }
  }
  plot.draw();
  requestAnimationFrame(tick);
}

// --- wiring ---------------------------------------------------------------------------------

ui.mic.addEventListener("click", toggleMic);
ui.file.addEventListener("change", () => ui.file.files[0] && playFile(ui.file.files[0]));
ui.vrmFile.addEventListener("change", () => ui.vrmFile.files[0] && loadVrm(ui.vrmFile.files[0]));
ui.profile.addEventListener("change", fillEmotions);
ui.token.addEventListener("change", loadInfo);
ui.interrupt.addEventListener("click", () => {
  if (!state.client) return;
  state.client.interrupt();
  if (state.player) {
    state.player.source.onended = null;
    state.player.source.stop();
    state.player = null;
    state.mode = "live";
  }
});
const sendEmotion = () => {
  if (state.client && state.client.open) {
    state.client.emotion(ui.emotion.value || null, Number(ui.intensity.value), EMOTION_RAMP_S);
  }
};
ui.emotion.addEventListener("change", sendEmotion);
ui.intensity.addEventListener("change", sendEmotion);
ui.drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  ui.drop.classList.add("dragging");
});
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("dragging"));
ui.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.drop.classList.remove("dragging");
  const file = e.dataTransfer.files[0];
  if (!file) return;
  if (file.name.toLowerCase().endsWith(".vrm")) loadVrm(file);
  else playFile(file);
});

// For tests and the curious: the page's state, and drawing any received frame.
window.a2fDemo = {
  get ready() { return state.ready; },
  get mode() { return state.mode; },
  get framesReceived() { return state.timeline ? state.timeline.last + 1 : 0; },
  get latencyMs() { return state.latencyMs; },
  get flushedFrames() { return state.flushedFrames; },
  get playbackTime() { return state.player ? playbackTime() : null; },
  /** One channel of every frame received so far (null where a frame is missing). */
  series(name) {
    const n = state.timeline ? state.timeline.last + 1 : 0;
    return Array.from({ length: n }, (_, i) => this.channel(i, name));
  },
  channel(index, name) {
    const row = state.timeline && state.timeline.frame(index);
    const i = state.ready ? state.ready.names.indexOf(name) : -1;
    return row && i >= 0 ? row[i] : null;
  },
  renderFrame(index) {
    const row = state.timeline && state.timeline.frame(index);
    state.frozen = true;
    if (row) render(row);
    return row !== null;
  },
  resume() { state.frozen = false; },
  vrmInfluences() { return state.vrmView ? state.vrmView.influences() : null; },
  vrmPose() { return state.vrmView ? state.vrmView.pose() : null; },
  /** Draw one frame given as {channel: value} over the current stream's names (tests). */
  renderValues(byName) {
    const names = state.ready ? state.ready.names : Object.keys(byName);
    if (!state.ready) state.faceInput = new FaceInput(names);
    state.frozen = true;
    render(names.map((n) => byName[n] || 0), names);
  },
  stop: stopAll,
};

requestAnimationFrame(tick);
loadInfo().catch((err) => setStatus(`cannot reach the service: ${err.message}`, true));
