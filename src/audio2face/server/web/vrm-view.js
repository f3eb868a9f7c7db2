// "Load your own VRM avatar": render a .vrm file with three.js and @pixiv/three-vrm
// (vendored under vendor/, MIT) and drive its expressions with the `vrm` profile.

import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";

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
    names.forEach((name, i) => {
      if (manager.getExpression(name)) manager.setValue(name, values[i]);
    });
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
