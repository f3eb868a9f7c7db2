// "Load your own VRM avatar": render a .vrm file with three.js and @pixiv/three-vrm
// (vendored under vendor/, MIT) and drive its expressions with the `vrm` profile; with
// `vrm-head` also its head bone (headYaw, headPitch, headRoll in degrees) and its gaze
// (the look* channels, through the model's own look-at: eye bones or expressions).

import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";

/** Degrees at which the gaze step's look* channels reach 1 (its range_deg defaults). */
const GAZE_RANGE_DEG = { side: 30, up: 20, down: 25 };

export class VrmView {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, alpha: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(22, canvas.width / canvas.height, 0.1, 20);
    const light = new THREE.DirectionalLight(0xffffff, Math.PI);
    light.position.set(1, 1, 1).normalize();
    this.scene.add(light, new THREE.AmbientLight(0xffffff, 0.6));
    this.vrm = null;
    this.timer = new THREE.Timer();
    this.euler = new THREE.Euler(0, 0, 0, "YXZ");
  }

  /** Load a .vrm from a File or ArrayBuffer; replaces the current avatar. */
  async load(file) {
    const data = file instanceof ArrayBuffer ? file : await file.arrayBuffer();
    const loader = new GLTFLoader();
    loader.register((parser) => new VRMLoaderPlugin(parser));
    const gltf = await loader.parseAsync(data, "");
    const vrm = gltf.userData.vrm;
    if (!vrm) throw new Error("this file has no VRM extension (is it a .vrm?)");
    VRMUtils.removeUnnecessaryVertices(gltf.scene);
    VRMUtils.combineSkeletons(gltf.scene);
    VRMUtils.rotateVRM0(vrm);
    if (this.vrm) {
      this.scene.remove(this.vrm.scene);
      VRMUtils.deepDispose(this.vrm.scene);
    }
    this.vrm = vrm;
    this.scene.add(vrm.scene);
    // Frame the head: find it through the humanoid, else the top of the model.
    const head = vrm.humanoid && vrm.humanoid.getNormalizedBoneNode("head");
    const target = new THREE.Vector3();
    if (head) head.getWorldPosition(target);
    else target.set(0, 1.4, 0);
    this.camera.position.set(target.x, target.y + 0.02, target.z + 0.9);
    this.camera.lookAt(target.x, target.y, target.z);
    return vrm;
  }

  /** Names of the avatar's expressions (VRM 1.0 presets and custom ones). */
  expressionNames() {
    const manager = this.vrm && this.vrm.expressionManager;
    return manager ? manager.expressions.map((e) => e.expressionName) : [];
  }

  /** Set expressions from one frame of the `vrm` profile (channels by name). */
  apply(names, values) {
    const manager = this.vrm && this.vrm.expressionManager;
    if (!manager || !values) return;
    const get = (name) => {
      const i = names.indexOf(name);
      return i < 0 ? null : values[i];
    };
    // Gaze through the model's look-at when it has one (it then owns the look*
    // expressions or the eye bones): the gaze step's look* are angle / range.
    const lookAt = this.vrm.lookAt;
    const gaze = ["lookLeft", "lookRight", "lookUp", "lookDown"].map(get);
    const useLookAt = lookAt && gaze.every((x) => x !== null);
    names.forEach((name, i) => {
      if (useLookAt && name.startsWith("look")) return;
      if (manager.getExpression(name)) manager.setValue(name, values[i]);
    });
    if (useLookAt) {
      const [left, right, up, down] = gaze;
      lookAt.target = null;
      lookAt.autoUpdate = true;
      lookAt.yaw = (left - right) * GAZE_RANGE_DEG.side; // > 0: to the avatar's left
      lookAt.pitch = up * GAZE_RANGE_DEG.up - down * GAZE_RANGE_DEG.down;
    }
    // Head pose: the normalized head bone, in VRM's axes (the avatar faces +z, +x is
    // its left, +y up): yaw about y, a raised chin turns about -x, a tilt to the left
    // shoulder about -z.
    const pose = ["headYaw", "headPitch", "headRoll"].map(get);
    const head = this.vrm.humanoid && this.vrm.humanoid.getNormalizedBoneNode("head");
    if (head && pose.every((x) => x !== null)) {
      const rad = Math.PI / 180;
      this.euler.set(-pose[1] * rad, pose[0] * rad, -pose[2] * rad, "YXZ");
      head.quaternion.setFromEuler(this.euler);
    }
  }

  /** The normalized head bone's rotation [x, y, z, w] and the look-at angles (tests). */
  pose() {
    const head = this.vrm && this.vrm.humanoid && this.vrm.humanoid.getNormalizedBoneNode("head");
    const lookAt = this.vrm && this.vrm.lookAt;
    return {
      head: head ? head.quaternion.toArray() : null,
      lookAt: lookAt ? [lookAt.yaw, lookAt.pitch] : null,
    };
  }

  /** Morph target weights of the avatar's meshes, by mesh name (for tests and debugging). */
  influences() {
    const out = {};
    if (this.vrm) {
      this.vrm.scene.traverse((o) => {
        if (o.morphTargetInfluences) out[o.name || o.uuid] = Array.from(o.morphTargetInfluences);
      });
    }
    return out;
  }

  render() {
    this.timer.update();
    if (this.vrm) this.vrm.update(this.timer.getDelta());
    this.renderer.render(this.scene, this.camera);
  }
}
