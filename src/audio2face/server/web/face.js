// The built-in face: our own 2D drawing, driven by ARKit blend shape values.
//
// It shows what a lip-sync engine must get right: jaw opening, lips pressed together
// on p/b/m (mouthClose, mouthPress, mouthRoll*), funnel (o) and pucker (u), smile and
// frown, blinks and brows, and what the alive profiles add: the gaze (eyeLook*), the
// blinks, and the head pose (headYaw, headPitch, headRoll in degrees: the face turns,
// nods and tilts). Values are looked up by name, so any channel order works; VRM
// expressions (aa, ih, ou, ee, oh, blink, look*, happy, ...) are mapped onto it as well.
// The face is drawn as a mirror (a selfie view): the avatar's left is on the left.

const SKIN = "#f2c9a5";
const SKIN_SHADE = "#d9a682";
const LIP = "#b5485d";
const MOUTH_INSIDE = "#3a1020";
const TEETH = "#f7f3ea";
const INK = "#2b2b33";

/** Values by ARKit name from a frame of any profile the face understands. */
export class FaceInput {
  constructor(names) {
    this.index = new Map(names.map((n, i) => [n, i]));
    this.isArkit = this.index.has("jawOpen");
    this.isVrm = !this.isArkit && this.index.has("aa");
  }

  /** Whether the face can show these channels at all. */
  get supported() {
    return this.isArkit || this.isVrm;
  }

  /** A getter `(arkitName) => value` over one frame. */
  reader(values) {
    const get = (name) => {
      const i = this.index.get(name);
      return i === undefined || !values ? 0 : values[i];
    };
    if (this.isArkit) return get;
    // VRM presets to the ARKit shapes that make them, roughly.
    const aa = get("aa"), ih = get("ih"), ou = get("ou"), ee = get("ee"), oh = get("oh");
    const happy = get("happy"), sad = get("sad"), angry = get("angry"), surprised = get("surprised");
    const blinkBoth = get("blink");
    const map = {
      jawOpen: Math.min(1, aa * 0.8 + oh * 0.5 + ee * 0.3 + ih * 0.2 + ou * 0.2 + surprised * 0.3),
      mouthFunnel: oh * 0.8,
      mouthPucker: ou * 0.9,
      mouthStretchLeft: ee * 0.5 + ih * 0.4,
      mouthStretchRight: ee * 0.5 + ih * 0.4,
      mouthSmileLeft: happy * 0.8 + ih * 0.2,
      mouthSmileRight: happy * 0.8 + ih * 0.2,
      mouthFrownLeft: sad * 0.7 + angry * 0.3,
      mouthFrownRight: sad * 0.7 + angry * 0.3,
      eyeBlinkLeft: Math.max(blinkBoth, get("blinkLeft")),
      eyeBlinkRight: Math.max(blinkBoth, get("blinkRight")),
      browInnerUp: sad * 0.6 + surprised * 0.8,
      browDownLeft: angry * 0.9,
      browDownRight: angry * 0.9,
      browOuterUpLeft: surprised * 0.7,
      browOuterUpRight: surprised * 0.7,
      cheekSquintLeft: happy * 0.5,
      cheekSquintRight: happy * 0.5,
      eyeWideLeft: surprised * 0.6,
      eyeWideRight: surprised * 0.6,
      // lookLeft: to the avatar's left, the left eye out and the right eye in.
      eyeLookOutLeft: get("lookLeft"),
      eyeLookInRight: get("lookLeft"),
      eyeLookInLeft: get("lookRight"),
      eyeLookOutRight: get("lookRight"),
      eyeLookUpLeft: get("lookUp"),
      eyeLookUpRight: get("lookUp"),
      eyeLookDownLeft: get("lookDown"),
      eyeLookDownRight: get("lookDown"),
      headYaw: get("headYaw"),
      headPitch: get("headPitch"),
      headRoll: get("headRoll"),
    };
    return (name) => map[name] || 0;
  }
}

const clamp01 = (x) => Math.max(0, Math.min(1, x));
const clampDeg = (x) => Math.max(-30, Math.min(30, Number(x) || 0));

/** The head pose in degrees (yaw > 0: to the avatar's left, pitch > 0: chin up, roll >
 * 0: towards the left shoulder), 0 where the profile has none. */
export function headPose(get) {
  return { yaw: clampDeg(get("headYaw")), pitch: clampDeg(get("headPitch")), roll: clampDeg(get("headRoll")) };
}

/** Draw the face for one frame on a 2D canvas context. */
export function drawFace(ctx, get, width, height) {
  const s = Math.min(width, height) / 400; // the drawing is designed on a 400 x 400 grid
  const v = (name) => clamp01(get(name));
  ctx.save();
  ctx.clearRect(0, 0, width, height);
  ctx.translate(width / 2, height / 2);
  ctx.scale(s, s);
  // Head pose, in the mirror: a turn to the avatar's left moves the face to the left
  // and its features further (they sit in front of the skull), a raised chin lifts
  // them, a tilt to the left shoulder turns the face anticlockwise about the neck.
  const pose = headPose(get);
  const turn = -pose.yaw * 1.6;
  const rise = -pose.pitch * 1.4;
  ctx.translate(0, 150);
  ctx.rotate((-pose.roll * Math.PI) / 180);
  ctx.translate(turn * 0.5, -150 + rise * 0.4);

  const jaw = v("jawOpen");
  const jawSide = (v("jawRight") - v("jawLeft")) * 10;
  // Head: the chin drops with the jaw.
  ctx.fillStyle = SKIN;
  ctx.strokeStyle = SKIN_SHADE;
  ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(-130, -40);
  ctx.bezierCurveTo(-135, -190, 135, -190, 130, -40);
  ctx.bezierCurveTo(128, 60 + jaw * 20, 70 + jawSide, 150 + jaw * 28, jawSide, 155 + jaw * 30);
  ctx.bezierCurveTo(-70 + jawSide, 150 + jaw * 28, -128, 60 + jaw * 20, -130, -40);
  ctx.fill();
  ctx.stroke();

  // Cheeks: puff and squint (smile) lift them.
  const puff = v("cheekPuff");
  for (const [side, sign] of [["Left", -1], ["Right", 1]]) {
    const lift = v(`cheekSquint${side}`) + v(`mouthSmile${side}`) * 0.5;
    ctx.fillStyle = `rgba(225, 120, 120, ${0.12 + 0.25 * lift})`;
    ctx.beginPath();
    ctx.ellipse(sign * (78 + puff * 10), 38 - lift * 8, 26 + puff * 12, 16 + puff * 8, 0, 0, Math.PI * 2);
    ctx.fill();
  }

  ctx.translate(turn * 0.5, rise * 0.6); // the features: in front of the skull
  drawEyesAndBrows(ctx, v);

  // Nose (sneer lifts the wings).
  const sneer = (v("noseSneerLeft") + v("noseSneerRight")) / 2;
  ctx.strokeStyle = SKIN_SHADE;
  ctx.lineWidth = 4;
  ctx.beginPath();
  ctx.moveTo(0, -20);
  ctx.quadraticCurveTo(6, 20, 16, 34 - sneer * 6);
  ctx.quadraticCurveTo(4, 44, -14, 36 - sneer * 6);
  ctx.stroke();

  drawMouth(ctx, v, jaw);
  ctx.restore();
}

function drawEyesAndBrows(ctx, v) {
  for (const [side, sign] of [["Left", -1], ["Right", 1]]) {
    const x = sign * 58;
    const y = -52;
    const blink = v(`eyeBlink${side}`);
    const wide = v(`eyeWide${side}`);
    const squint = v(`eyeSquint${side}`);
    const open = clamp01(1 - blink) * (1 + 0.35 * wide) * (1 - 0.35 * squint);
    const ry = 15 * open + 0.8;
    // white, iris (follows eyeLook*), lid line
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.ellipse(x, y, 26, ry, 0, 0, Math.PI * 2);
    ctx.fill();
    const lookX = (v(`eyeLookOut${side}`) - v(`eyeLookIn${side}`)) * sign * 10;
    const lookY = (v(`eyeLookDown${side}`) - v(`eyeLookUp${side}`)) * 7;
    if (open > 0.08) {
      ctx.save();
      ctx.beginPath();
      ctx.ellipse(x, y, 26, ry, 0, 0, Math.PI * 2);
      ctx.clip();
      ctx.fillStyle = "#3d6b8c";
      ctx.beginPath();
      ctx.arc(x + lookX, y + lookY, 11, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = INK;
      ctx.beginPath();
      ctx.arc(x + lookX, y + lookY, 5, 0, Math.PI * 2);
      ctx.fill();
      ctx.restore();
    }
    ctx.strokeStyle = INK;
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.ellipse(x, y, 26, ry, 0, Math.PI, Math.PI * 2); // upper lid
    ctx.stroke();

    // Brow: inner end (browInnerUp, browDown), outer end (browOuterUp, browDown).
    const down = v(`browDown${side}`);
    const inner = y - 32 - v("browInnerUp") * 16 + down * 12;
    const outer = y - 30 - v(`browOuterUp${side}`) * 16 + down * 4;
    ctx.lineWidth = 7;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(sign * 22, inner);
    ctx.quadraticCurveTo(sign * 55, Math.min(inner, outer) - 10, sign * 88, outer);
    ctx.stroke();
  }
}

function drawMouth(ctx, v, jaw) {
  const smile = (v("mouthSmileLeft") + v("mouthSmileRight")) / 2;
  const frown = (v("mouthFrownLeft") + v("mouthFrownRight")) / 2;
  const stretch = (v("mouthStretchLeft") + v("mouthStretchRight")) / 2;
  const funnel = v("mouthFunnel");
  const pucker = v("mouthPucker");
  const close = v("mouthClose");
  const press = (v("mouthPressLeft") + v("mouthPressRight")) / 2;
  const roll = (v("mouthRollLower") + v("mouthRollUpper")) / 2;
  const shift = (v("mouthRight") - v("mouthLeft")) * 14;
  const upperUp = (v("mouthUpperUpLeft") + v("mouthUpperUpRight")) / 2;
  const lowerDown = (v("mouthLowerDownLeft") + v("mouthLowerDownRight")) / 2;

  const cy = 82 + jaw * 10;
  // Width: smile and stretch widen, funnel and pucker round the lips together.
  const half = 46 * (1 + 0.25 * smile + 0.3 * stretch) * (1 - 0.4 * funnel - 0.5 * pucker);
  // Opening: the jaw opens the lips unless mouthClose holds them shut over an open jaw
  // (p/b/m); press and roll thin them further.
  const gap = Math.max(0, jaw - close) * (1 - 0.6 * press) * (1 - 0.5 * roll);
  const open = 4 + gap * 70 + funnel * 10 + lowerDown * 8 + upperUp * 4;
  const cornerY = cy - smile * 14 + frown * 12;
  const upperY = cy - open * 0.35 - upperUp * 4;
  const lowerY = cy + open * 0.65;
  const lipThick = 9 * (1 - 0.7 * roll) * (1 - 0.4 * press) + pucker * 6 + funnel * 3;
  const round = 0.35 + 0.5 * (funnel + pucker);

  const left = -half + shift;
  const right = half + shift;
  const outline = (upper, lower, pad) => {
    ctx.beginPath();
    ctx.moveTo(left - pad, cornerY);
    ctx.bezierCurveTo(left + half * round, upper - pad, right - half * round, upper - pad, right + pad, cornerY);
    ctx.bezierCurveTo(right - half * round, lower + pad, left + half * round, lower + pad, left - pad, cornerY);
    ctx.closePath();
  };

  // Lips (the outer shape), then the opening with teeth over it.
  ctx.fillStyle = LIP;
  outline(upperY, lowerY, lipThick);
  ctx.fill();
  if (gap > 0.02 || funnel > 0.3) {
    ctx.fillStyle = MOUTH_INSIDE;
    outline(upperY, lowerY, 0);
    ctx.fill();
    ctx.save();
    outline(upperY, lowerY, 0);
    ctx.clip();
    ctx.fillStyle = TEETH;
    ctx.fillRect(left, upperY - 4, right - left, 8 + gap * 8);
    ctx.fillStyle = "#c0455f";
    ctx.beginPath();
    ctx.ellipse(shift, lowerY + 4, half * 0.5, 8 + gap * 10, 0, Math.PI, Math.PI * 2);
    ctx.fill();
    ctx.restore();
  } else {
    ctx.strokeStyle = MOUTH_INSIDE;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(left, cornerY);
    ctx.quadraticCurveTo(shift, (upperY + lowerY) / 2 + 2 - smile * 3, right, cornerY);
    ctx.stroke();
  }
}
