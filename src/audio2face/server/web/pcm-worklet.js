// AudioWorklet processor "a2f-pcm16k": microphone audio at the context's rate to 16 kHz
// mono 16-bit PCM, posted to the page in chunks (ArrayBuffer of Int16, transferred).
//
// Resampling is a windowed-sinc low-pass evaluated at each output instant, so 44.1 and
// 48 kHz capture (the usual rates) lose nothing below 7 kHz and alias nothing into the
// band the face model listens to. Browsers that honour `new AudioContext({sampleRate:
// 16000})` hand 16 kHz in, and the filter reduces to a copy.

const HALF_TAPS_AT_UNITY = 8; // zero crossings each side of the kernel's centre

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.outRate = opts.targetRate || 16000;
    this.ratio = sampleRate / this.outRate; // input samples per output sample
    // Cut off just below the output's Nyquist frequency (relative to the input's).
    this.cutoff = Math.min(1, 1 / this.ratio) * 0.92;
    this.half = Math.ceil(HALF_TAPS_AT_UNITY / this.cutoff);
    this.passthrough = Math.abs(this.ratio - 1) < 1e-9;
    this.buf = new Float32Array(0);
    this.pos = this.half; // input position of the next output sample
    this.chunkLength = Math.round((this.outRate * (opts.chunkMs || 20)) / 1000);
    this.chunk = new Int16Array(this.chunkLength);
    this.fill = 0;
  }

  kernel(t) {
    // sinc low-pass at `cutoff`, Hann window over +-half input samples
    if (Math.abs(t) >= this.half) return 0;
    const x = Math.PI * this.cutoff * t;
    const sinc = t === 0 ? 1 : Math.sin(x) / x;
    const w = 0.5 + 0.5 * Math.cos((Math.PI * t) / this.half);
    return this.cutoff * sinc * w;
  }

  emit(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.chunk[this.fill++] = s < 0 ? s * 32768 : s * 32767;
    if (this.fill === this.chunkLength) {
      // Transferred, not copied: the buffer (and the old array) is detached afterwards.
      this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
      this.chunk = new Int16Array(this.chunkLength);
      this.fill = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const n = input[0].length;
    const mono = new Float32Array(n);
    for (const channel of input) for (let i = 0; i < n; i++) mono[i] += channel[i] / input.length;
    if (this.passthrough) {
      for (let i = 0; i < n; i++) this.emit(mono[i]);
      return true;
    }
    const buf = new Float32Array(this.buf.length + n);
    buf.set(this.buf);
    buf.set(mono, this.buf.length);
    while (this.pos + this.half < buf.length) {
      const centre = Math.floor(this.pos);
      let acc = 0;
      for (let k = centre - this.half + 1; k <= centre + this.half; k++) {
        if (k >= 0) acc += buf[k] * this.kernel(this.pos - k);
      }
      this.emit(acc);
      this.pos += this.ratio;
    }
    // Keep only the history the next outputs still reach back to.
    const drop = Math.max(0, Math.floor(this.pos) - this.half);
    this.buf = buf.slice(drop);
    this.pos -= drop;
    return true;
  }
}

registerProcessor("a2f-pcm16k", Pcm16kProcessor);
