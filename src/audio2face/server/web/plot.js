// A scrolling plot of a few channels over the last seconds, on a 2D canvas.

export const PLOT_CHANNELS = [
  { label: "jawOpen", names: ["jawOpen", "aa"], color: "#e4572e" },
  { label: "mouthClose", names: ["mouthClose"], color: "#17bebb" },
  { label: "mouthFunnel", names: ["mouthFunnel", "oh"], color: "#ffc914" },
  { label: "mouthSmile", names: ["mouthSmileLeft", "mouthSmileRight", "happy"], color: "#76b041" },
];

export class ChannelPlot {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {number} seconds how much history is shown
   */
  constructor(canvas, seconds = 5) {
    this.canvas = canvas;
    this.seconds = seconds;
    this.setNames([], 30);
  }

  /** The stream's channel names and frame rate (from the ready message). */
  setNames(names, fps) {
    this.fps = fps;
    this.size = Math.max(2, Math.round(this.seconds * fps));
    const index = new Map(names.map((n, i) => [n, i]));
    this.sources = PLOT_CHANNELS.map((ch) => ch.names.map((n) => index.get(n)).filter((i) => i !== undefined));
    this.history = PLOT_CHANNELS.map(() => new Float32Array(this.size));
    this.head = 0;
  }

  /** Append one frame's values. */
  push(values) {
    this.sources.forEach((src, c) => {
      let sum = 0;
      for (const i of src) sum += values[i];
      this.history[c][this.head] = src.length ? sum / src.length : 0;
    });
    this.head = (this.head + 1) % this.size;
  }

  draw() {
    const { canvas } = this;
    const ctx = canvas.getContext("2d");
    const w = canvas.width;
    const h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#333a";
    ctx.lineWidth = 1;
    for (let s = 1; s < this.seconds; s++) {
      const x = (s / this.seconds) * w;
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x, h);
      ctx.stroke();
    }
    PLOT_CHANNELS.forEach((ch, c) => {
      const data = this.history[c];
      ctx.strokeStyle = ch.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      for (let k = 0; k < this.size; k++) {
        const value = data[(this.head + k) % this.size];
        const x = (k / (this.size - 1)) * w;
        const y = h - 4 - Math.max(0, Math.min(1, value)) * (h - 8);
        if (k === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      ctx.stroke();
      ctx.fillStyle = ch.color;
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillText(ch.label, 6 + c * 92, 14);
    });
  }
}
