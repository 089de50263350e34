// A small helper for emitting ONNX graphs with onnx-proto (protobufjs over onnx.proto).
import { onnx } from 'onnx-proto';

export const OPSET = 17;
const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

export type Attr = { kind: 'i'; v: number } | { kind: 'f'; v: number } | { kind: 'ints'; v: number[] } | { kind: 's'; v: string } | { kind: 'g'; v: onnx.IGraphProto };
export const attr = {
  i: (v: number): Attr => ({ kind: 'i', v }),
  f: (v: number): Attr => ({ kind: 'f', v }),
  ints: (v: number[]): Attr => ({ kind: 'ints', v }),
  s: (v: string): Attr => ({ kind: 's', v }),
  /** a subgraph (Loop's body) */
  g: (v: onnx.IGraphProto): Attr => ({ kind: 'g', v }),
};

export type ElemType = 'float' | 'int64' | 'int32' | 'bool' | 'double';

/** Where a weight lives in the external data file. */
export interface ExternalRef {
  dims: number[];
  offset: number;
  length: number;
}

export class GraphBuilder {
  /** where op() adds nodes: the main graph's, or a subgraph's while subgraph() builds it */
  private nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;
  private scope = '/model';
  private readonly consts = new Map<string, string>();

  constructor(private readonly externalFile: string) {}

  /** Runs `fn` with node names prefixed by `/model/<scope>`, like onnxruntime-genai's builder. */
  within<R>(scope: string, fn: () => R): R {
    const prev = this.scope;
    this.scope = `${prev}/${scope}`;
    try {
      return fn();
    } finally {
      this.scope = prev;
    }
  }

  /** Adds a node; `outName` names its output (graph outputs are named this way, with no Identity copy). */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string, outName?: string): string {
    return this.opN(type, inputs, 1, attrs, name, outName)[0]!;
  }

  opN(type: string, inputs: string[], outputs: number, attrs: Record<string, Attr> = {}, name?: string, outName?: string): string[] {
    const base = `${this.scope}/${name ?? type}`;
    const id = `${base}_${this.counter++}`;
    const outs = outName ? [outName] : Array.from({ length: outputs }, (_, i) => `${id}/output_${i}`);
    const attribute: onnx.IAttributeProto[] = Object.entries(attrs).map(([k, a]) => {
      switch (a.kind) {
        case 'i':
          return { name: k, type: A.INT, i: a.v };
        case 'f':
          return { name: k, type: A.FLOAT, f: a.v };
        case 'ints':
          return { name: k, type: A.INTS, ints: a.v };
        case 's':
          return { name: k, type: A.STRING, s: new TextEncoder().encode(a.v) };
        case 'g':
          return { name: k, type: A.GRAPH, g: a.v };
      }
    });
    this.nodes.push({ opType: type, name: id, input: inputs, output: outs, attribute });
    return outs;
  }

  /**
   * Renames the value `value` (a node's output) to `name` everywhere it appears, so the node that
   * computes it writes a graph output directly (no Identity copy); returns `name`.
   */
  rename(value: string, name: string): string {
    const producer = this.nodes.find((n) => n.output?.includes(value));
    if (!producer) throw new Error(`internal: no node computes ${value}`);
    for (const n of this.nodes) {
      if (n.output) n.output = n.output.map((o) => (o === value ? name : o));
      if (n.input) n.input = n.input.map((i) => (i === value ? name : i));
    }
    return name;
  }

  private constant(key: string, make: () => onnx.ITensorProto): string {
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = `/model/constants/${key}`;
    this.initializers.push({ ...make(), name });
    this.consts.set(key, name);
    return name;
  }

  i64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64_${dims.join('x')}_${values.join('_')}`;
    return this.constant(key, () => {
      const buf = new BigInt64Array(values.map((v) => BigInt(v)));
      return { dataType: T.INT64, dims, rawData: new Uint8Array(buf.buffer) };
    });
  }

  f32(values: number[], dims: number[] = [values.length]): string {
    const key = `f32_${dims.join('x')}_${values.map((v) => String(v)).join('_')}`;
    return this.constant(key, () => ({ dataType: T.FLOAT, dims, rawData: new Uint8Array(new Float32Array(values).buffer) }));
  }

  /** A float32 initializer stored inline (small tensors computed at build time). */
  inlineF32(name: string, data: Float32Array, dims: number[]): string {
    this.initializers.push({ name, dataType: T.FLOAT, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** A float32 weight in the external data file. */
  weight(name: string, ref: ExternalRef): string {
    this.initializers.push({
      name,
      dataType: T.FLOAT,
      dims: ref.dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.externalFile },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ],
    });
    return name;
  }

  input(name: string, elemType: ElemType, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: ElemType, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /**
   * A subgraph (a Loop body): `inputs` are its formal inputs (named `${name}/${input}`), `build`
   * adds its nodes with op() (they may read any value of the enclosing graph, constants included)
   * and returns its outputs with their element types (shapes left to inference).
   */
  subgraph(name: string, inputs: [string, ElemType, (number | string)[]][], build: (...inputs: string[]) => [string, ElemType][]): onnx.IGraphProto {
    const outer = this.nodes;
    const nodes: onnx.INodeProto[] = [];
    this.nodes = nodes;
    try {
      const formal = inputs.map(([n]) => `${this.scope}/${name}/${n}`);
      const outs = this.within(name, () => build(...formal));
      // A subgraph output must be produced by one of its own nodes (not an outer value passed through).
      const output = outs.map(([value, type]) => {
        const own = this.op('Identity', [value], {}, 'out', `${this.scope}/${name}/out_${this.counter++}`);
        return valueInfo(own, type, undefined);
      });
      return { name, node: nodes, input: inputs.map(([, t, dims], i) => valueInfo(formal[i]!, t, dims)), output };
    } finally {
      this.nodes = outer;
    }
  }

  encode(graphName: string, docString: string): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: 8,
      producerName: 'attnscope',
      producerVersion: '0.1',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}

/** A typed value; `dims` undefined leaves the shape (and rank) unknown. */
function valueInfo(name: string, elemType: ElemType, dims: (number | string)[] | undefined): onnx.IValueInfoProto {
  const type = elemType === 'float' ? T.FLOAT : elemType === 'int64' ? T.INT64 : elemType === 'int32' ? T.INT32 : elemType === 'double' ? T.DOUBLE : T.BOOL;
  return {
    name,
    type: {
      tensorType: {
        elemType: type,
        ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
      },
    },
  };
}

/** tanh(t / cap)·cap (Gemma 2/3's soft-capping of attention scores and logits); `t` itself when cap is 0. */
export function softcap(g: GraphBuilder, t: string, cap: number): string {
  return cap ? g.op('Mul', [g.op('Tanh', [g.op('Div', [t, g.f32([cap], [])])]), g.f32([cap], [])], {}, 'softcap') : t;
}
