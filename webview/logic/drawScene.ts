// Draws a figure scene (src/shared/figures/scene.ts) on a canvas 2D context: the PNG side of the
// exports (the SVG side is sceneToSvg). Needs only the drawing calls below, so a recording stub can
// stand in for a canvas in tests.
import { MONO_FONT, type Scene } from '../../src/shared/figures/scene';

export type Ctx2D = Pick<
  CanvasRenderingContext2D,
  'save' | 'restore' | 'scale' | 'translate' | 'rotate' | 'fillRect' | 'strokeRect' | 'fillText' | 'beginPath' | 'moveTo' | 'lineTo' | 'stroke' | 'fillStyle' | 'strokeStyle' | 'lineWidth' | 'font' | 'textAlign' | 'textBaseline'
>;

export function drawScene(ctx: Ctx2D, s: Scene, scale: number): void {
  ctx.save();
  ctx.scale(scale, scale);
  ctx.fillStyle = s.background;
  ctx.fillRect(0, 0, s.width, s.height);
  for (const sh of s.shapes) {
    if (sh.kind === 'rect') {
      if (sh.fill !== 'none') {
        ctx.fillStyle = sh.fill;
        ctx.fillRect(sh.x, sh.y, sh.w, sh.h);
      }
      if (sh.stroke) {
        ctx.strokeStyle = sh.stroke;
        ctx.lineWidth = sh.strokeWidth ?? 1;
        ctx.strokeRect(sh.x, sh.y, sh.w, sh.h);
      }
    } else if (sh.kind === 'line') {
      ctx.strokeStyle = sh.stroke;
      ctx.lineWidth = sh.width;
      ctx.beginPath();
      ctx.moveTo(sh.x1, sh.y1);
      ctx.lineTo(sh.x2, sh.y2);
      ctx.stroke();
    } else {
      ctx.save();
      ctx.translate(sh.x, sh.y);
      if (sh.rotate) ctx.rotate((sh.rotate * Math.PI) / 180);
      ctx.fillStyle = sh.fill;
      ctx.font = `${sh.bold ? 'bold ' : ''}${sh.size}px ${sh.mono ? MONO_FONT : s.fontFamily}`;
      ctx.textAlign = sh.anchor === 'middle' ? 'center' : sh.anchor === 'end' ? 'right' : 'left';
      ctx.textBaseline = sh.baseline === 'middle' ? 'middle' : 'alphabetic';
      ctx.fillText(sh.text, 0, 0);
      ctx.restore();
    }
  }
  ctx.restore();
}

/** Pixel size of a scene rasterized at `scale`. */
export function rasterSize(s: Scene, scale: number): { width: number; height: number } {
  return { width: Math.max(1, Math.round(s.width * scale)), height: Math.max(1, Math.round(s.height * scale)) };
}
