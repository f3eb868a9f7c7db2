// audio2face.js: a dependency-free ES module client for audio2face protocol v2.
//
//   import { Audio2FaceClient, FrameTimeline } from "/web/audio2face.js";
//   const client = new Audio2FaceClient("ws://127.0.0.1:18083/api/v2/stream");
//   const ready = await client.connect({ profile: "arkit", output: "binary" });
//   client.addEventListener("frames", (e) => timeline.add(e.detail));
//   client.sendAudio(int16Samples);   // 16 kHz mono unless connect() said otherwise
//   client.flush();                   // end of an utterance; the clock runs on
//   await client.end();               // remaining frames, then the socket closes
//
// The protocol is in docs/protocol-v2.md and this module's use in docs/web.md.

/** First 4 bytes of a binary frame block: ASCII "A2F2". */
export const FRAME_MAGIC = "A2F2";
/** Bytes before the float32 values of a binary frame block. */
export const FRAME_HEADER_BYTES = 16;

/** The v2 socket URL of the server that served `location` (the demo page's own). */
export function defaultUrl(location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v2/stream`;
}

/**
 * Parse a binary frame block (little-endian: magic, first, count, channels, float32 rows).
 * @param {ArrayBuffer} buffer
 * @returns {{first: number, count: number, channels: number, values: Float32Array}}
 */
export function decodeFrames(buffer) {
  if (buffer.byteLength < FRAME_HEADER_BYTES) {
    throw new Error(`binary frame block of ${buffer.byteLength} bytes is shorter than its header`);
  }
  const view = new DataView(buffer);
  const magic = String.fromCharCode(view.getUint8(0), view.getUint8(1), view.getUint8(2), view.getUint8(3));
  if (magic !== FRAME_MAGIC) throw new Error(`binary frame block starts with ${magic}, not ${FRAME_MAGIC}`);
  const first = view.getUint32(4, true);
  const count = view.getUint32(8, true);
  const channels = view.getUint32(12, true);
  if (buffer.byteLength !== FRAME_HEADER_BYTES + 4 * count * channels) {
    throw new Error(`binary frame block does not hold ${count} x ${channels} float32 values`);
  }
  // Little-endian hosts (all browsers in practice) can view the bytes directly.
  const values = new Float32Array(buffer, FRAME_HEADER_BYTES, count * channels);
  return { first, count, channels, values };
}

/** Float samples in [-1, 1] to 16-bit PCM. */
export function floatToInt16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? s * 32768 : s * 32767;
  }
  return out;
}

/** An error the server reported ({type: "error"}) or a close without "end". */
export class Audio2FaceError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "Audio2FaceError";
    this.code = code;
  }
}

/**
 * One v2 stream. Events (all `CustomEvent`s, data in `detail`):
 * - `ready`: the server's ready message (names, fps, lookahead_ms, profile, emotions, ...)
 * - `frames`: {first, count, channels, values: Float32Array (row-major), receivedAt}
 * - `flushed` {frames}, `interrupted` {frame}, `end` {frames}
 * - `error`: {code, message}; `close`: {code, reason}
 */
export class Audio2FaceClient extends EventTarget {
  /**
   * @param {string} [url] ws(s)://host:port/api/v2/stream (default: this page's server)
   * @param {{token?: string}} [options] token: sent in the start message
   */
  constructor(url = defaultUrl(), options = {}) {
    super();
    this.url = url;
    this.token = options.token || null;
    this.ws = null;
    this.ready = null;
    this.encoding = "pcm_s16le";
    this.framesReceived = 0;
    this._ended = null;
  }

  /**
   * Open the socket, send start, resolve with the ready message.
   * @param {{sampleRate?: number, encoding?: string, profile?: string, output?: string,
   *          emotion?: string|{name: string, intensity?: number}|null}} [start]
   */
  connect(start = {}) {
    this.encoding = start.encoding || "pcm_s16le";
    const message = {
      type: "start",
      sample_rate: start.sampleRate || 16000,
      encoding: this.encoding,
      profile: start.profile || null,
      output: start.output || "binary",
      emotion: start.emotion || null,
      token: this.token,
    };
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let settled = false;
      ws.onopen = () => ws.send(JSON.stringify(message));
      ws.onmessage = (event) => {
        const msg = this._receive(event.data);
        if (!settled && msg && msg.type === "ready") {
          settled = true;
          resolve(msg);
        } else if (!settled && msg && msg.type === "error") {
          settled = true;
          reject(new Audio2FaceError(msg.code, msg.message));
        }
      };
      ws.onerror = () => {
        if (!settled) {
          settled = true;
          reject(new Audio2FaceError(1006, `cannot open ${this.url}`));
        }
      };
      ws.onclose = (event) => {
        this._emit("close", { code: event.code, reason: event.reason });
        if (!settled) {
          settled = true;
          reject(new Audio2FaceError(event.code, event.reason || "closed before ready"));
        }
        if (this._ended) {
          const { resolve: done, reject: fail } = this._ended;
          this._ended = null;
          if (event.code === 1000) done(this.framesReceived);
          else fail(new Audio2FaceError(event.code, event.reason || "closed before end"));
        }
      };
    });
  }

  /** Whether audio and control messages can be sent now. */
  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in the browser, not yet on the wire (pace a fast producer on it). */
  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  /**
   * Send audio at the start's rate: Int16Array, Float32Array (converted to the start's
   * encoding) or raw bytes (ArrayBuffer) already in it.
   */
  sendAudio(samples) {
    if (!this.open) return false;
    let data = samples;
    if (samples instanceof Float32Array) {
      data = this.encoding === "pcm_f32le" ? samples : floatToInt16(samples);
    } else if (samples instanceof Int16Array && this.encoding === "pcm_f32le") {
      data = Float32Array.from(samples, (s) => s / 32768);
    }
    this.ws.send(data);
    return true;
  }

  /** Change the emotion from the current audio position, easing in over rampS seconds. */
  emotion(name, intensity = 1, rampS = 0) {
    return this._send({ type: "emotion", name: name || null, intensity, ramp_s: rampS });
  }

  /** End of an utterance: its frames, then a `flushed` event. The stream stays open. */
  flush() {
    return this._send({ type: "flush" });
  }

  /** Barge-in: audio not yet animated is dropped, the face eases to rest. */
  interrupt() {
    return this._send({ type: "interrupt" });
  }

  /** No more audio: resolves with the frame count once the server has closed. */
  end() {
    return new Promise((resolve, reject) => {
      this._ended = { resolve, reject };
      if (!this._send({ type: "end" })) {
        this._ended = null;
        reject(new Audio2FaceError(1006, "the stream is not open"));
      }
    });
  }

  /** Close the socket now (no more frames). */
  close() {
    if (this.ws) this.ws.close(1000);
  }

  _send(message) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _receive(data) {
    const receivedAt = performance.now();
    if (data instanceof ArrayBuffer) {
      const block = decodeFrames(data);
      block.receivedAt = receivedAt;
      this.framesReceived = block.first + block.count;
      this._emit("frames", block);
      return null;
    }
    const msg = JSON.parse(data);
    if (msg.type === "frames") {
      const count = msg.values.length;
      const channels = count ? msg.values[0].length : 0;
      const values = new Float32Array(count * channels);
      msg.values.forEach((row, k) => values.set(row, k * channels));
      this.framesReceived = msg.first + count;
      this._emit("frames", { first: msg.first, count, channels, values, receivedAt });
      return null;
    }
    if (msg.type === "ready") this.ready = msg;
    if (msg.type === "end") {
      this._emit("end", msg);
      return msg;
    }
    this._emit(msg.type, msg);
    return msg;
  }
}

/**
 * Frames by index, for playback in sync with audio: `at(t)` is the face at `t` seconds
 * of the stream (linear between frames; the last frame holds until newer ones arrive).
 */
export class FrameTimeline {
  constructor(names, fps, { keepSeconds = 600 } = {}) {
    this.names = names;
    this.fps = fps;
    this.channels = names.length;
    this.maxFrames = Math.ceil(keepSeconds * fps);
    this.rows = new Map();
    this.last = -1;
  }

  /** Add a `frames` event's detail. */
  add({ first, count, values }) {
    const c = this.channels;
    for (let k = 0; k < count; k++) {
      this.rows.set(first + k, values.subarray(k * c, (k + 1) * c));
    }
    this.last = Math.max(this.last, first + count - 1);
    for (const index of this.rows.keys()) {
      if (index > this.last - this.maxFrames) break;
      this.rows.delete(index);
    }
  }

  /** Frame `i` (or the nearest earlier one held), or null before any. */
  frame(i) {
    for (let j = Math.min(i, this.last); j >= 0 && j > this.last - this.maxFrames; j--) {
      const row = this.rows.get(j);
      if (row) return row;
    }
    return null;
  }

  /** The face at `t` seconds of stream time, interpolated. */
  at(t) {
    const x = Math.max(0, t * this.fps);
    const i = Math.floor(x);
    const a = this.frame(i);
    const b = this.rows.get(i + 1);
    if (!a || !b) return a;
    const w = x - i;
    const out = new Float32Array(this.channels);
    for (let k = 0; k < this.channels; k++) out[k] = a[k] + (b[k] - a[k]) * w;
    return out;
  }

  /** The newest frame, or null. */
  latest() {
    return this.last >= 0 ? this.frame(this.last) : null;
  }

  clear() {
    this.rows.clear();
    this.last = -1;
  }
}

/**
 * A function that writes frame values into a three.js / Babylon.js style morph target
 * array, matching channels to morph targets by name (case-insensitive).
 * @param {string[]} names the ready message's names
 * @param {Object<string, number>} dictionary e.g. mesh.morphTargetDictionary
 * @returns {(values: Float32Array, influences: number[]) => number} (returns channels set)
 */
export function morphTargetMapper(names, dictionary) {
  const byLower = new Map(Object.entries(dictionary).map(([k, v]) => [k.toLowerCase(), v]));
  const pairs = [];
  names.forEach((name, channel) => {
    const target = byLower.get(name.toLowerCase());
    if (target !== undefined) pairs.push([channel, target]);
  });
  return (values, influences) => {
    for (const [channel, target] of pairs) influences[target] = values[channel];
    return pairs.length;
  };
}

/**
 * Capture the microphone and stream it as 16 kHz PCM through `client` (connected with
 * sampleRate 16000). Resolves with {context, stop()}; `onChunk(samples, capturedAt)` is
 * called for every chunk sent (capturedAt: performance.now() when it left the worklet).
 */
export async function startMicrophone(client, options = {}) {
  const workletUrl = options.workletUrl || new URL("./pcm-worklet.js", import.meta.url);
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  const context = options.audioContext || new AudioContext();
  await context.audioWorklet.addModule(workletUrl);
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "a2f-pcm16k", {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    processorOptions: { targetRate: 16000, chunkMs: options.chunkMs || 20 },
  });
  node.port.onmessage = (event) => {
    const samples = new Int16Array(event.data);
    client.sendAudio(samples);
    if (options.onChunk) options.onChunk(samples, performance.now());
  };
  // Browsers render only what reaches the destination: pull the worklet through a
  // muted gain (it outputs silence anyway).
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  if (context.state === "suspended") await context.resume();
  return {
    context,
    stop() {
      source.disconnect();
      mute.disconnect();
      node.port.onmessage = null;
      stream.getTracks().forEach((track) => track.stop());
      if (!options.audioContext) context.close();
    },
  };
}
