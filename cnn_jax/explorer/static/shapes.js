// The size formula of cnn_jax/shapes.py and the shape table of cnn_jax/summary.py, in the page:
//   out = floor((in + pad_lo + pad_hi − dilation·(k − 1) − 1) / stride) + 1
// tests/test_explorer_browser.py checks it against the Python on random geometries.
"use strict";

const Shapes = (() => {
  const AXES = ["height", "width"];

  class GeometryError extends Error {
    constructor(kind, layer, message, axis) {
      super(message);
      this.kind = kind;  // "shape" (impossible sizes, Python ShapeError) or "layer" (LayerError)
      this.layer = layer;
      this.axis = axis;
    }
  }

  const isInt = (v) => typeof v === "number" && Number.isInteger(v);

  function pair(value, what, layer) {
    if (isInt(value)) return [value, value];
    if (Array.isArray(value) && value.length === 2 && value.every(isInt)) return [value[0], value[1]];
    throw new GeometryError("layer", layer,
      `layer '${layer}': ${what} must be an int or a pair of ints, got ${JSON.stringify(value)}`);
  }

  function resolvePadding(padding, sizeIn, kernel, stride, dilation, axisIndex, layer) {
    if (typeof padding === "string") {
      const mode = padding.toUpperCase();
      if (mode === "VALID") return [0, 0];
      if (mode === "SAME") {
        const out = Math.ceil(sizeIn / stride);
        const total = Math.max((out - 1) * stride + dilation * (kernel - 1) + 1 - sizeIn, 0);
        return [Math.floor(total / 2), total - Math.floor(total / 2)];
      }
    } else if (isInt(padding)) {
      return [padding, padding];
    } else if (Array.isArray(padding) && padding.length === 2) {
      const item = padding[axisIndex];
      if (isInt(item)) return [item, item];
      if (Array.isArray(item) && item.length === 2) return [item[0], item[1]];
    }
    throw new GeometryError("layer", layer, `layer '${layer}': padding must be 'VALID', 'SAME', ` +
      `an int or pairs, got ${JSON.stringify(padding)}`);
  }

  // One spatial axis, as AxisGeometry in shapes.py.
  function axisGeometry(axis, sizeIn, kernel, stride, padLo, padHi, dilation) {
    const span = dilation * (kernel - 1) + 1;
    const out = Math.floor((sizeIn + padLo + padHi - span) / stride) + 1;
    const pad = padLo === padHi ? `2·${padLo}` : `${padLo}+${padHi}`;
    const formula = `floor((${sizeIn} + ${pad} − ${dilation}·(${kernel}−1) − 1)/${stride}) + 1 = ${out}`;
    return { axis, sizeIn, kernel, stride, padLo, padHi, dilation, span, out, formula };
  }

  function windowGeometry(layer, kind, spatialIn, kernel, stride, padding, dilation = 1) {
    const what = kind === "pool" ? "window" : "kernel";
    const kernels = pair(kernel, what, layer);
    const strides = pair(stride, "stride", layer);
    const dilations = pair(dilation, "dilation", layer);
    return AXES.map((name, i) => {
      const k = kernels[i], s = strides[i], d = dilations[i], sizeIn = spatialIn[i];
      for (const [label, value] of [[`${what} size`, k], ["stride", s], ["dilation", d]]) {
        if (value < 1) {
          throw new GeometryError("layer", layer,
            `layer '${layer}' (${kind}): ${label} must be >= 1, got ${value}`);
        }
      }
      const [lo, hi] = resolvePadding(padding, sizeIn, k, s, d, i, layer);
      if (lo < 0 || hi < 0) {
        throw new GeometryError("layer", layer,
          `layer '${layer}' (${kind}): padding must be >= 0, got (${lo}, ${hi}) along ${name}`);
      }
      const g = axisGeometry(name, sizeIn, k, s, lo, hi, d);
      if (g.out < 1) {
        throw new GeometryError("shape", layer,
          `layer '${layer}' (${kind}): ${what} ${k} (dilated span ${g.span}) is larger than the ` +
          `padded input ${sizeIn + lo + hi} along ${name}: out = ${g.formula}, but an output ` +
          "needs at least 1", name);
      }
      return g;
    });
  }

  // windowGeometry of a pool layer that also refuses a window lying entirely in the padding.
  function poolGeometry(layer, spatialIn, window, stride, padding) {
    const axes = windowGeometry(layer, "pool", spatialIn, window, stride, padding);
    for (const g of axes) {
      const lastStart = (g.out - 1) * g.stride;
      let which = null;
      if (g.padLo >= g.kernel) which = "first";
      else if (lastStart >= g.padLo + g.sizeIn) which = "last";
      if (which) {
        throw new GeometryError("shape", layer,
          `layer '${layer}' (pool): window ${g.kernel} with padding (${g.padLo}, ${g.padHi}) ` +
          `along ${g.axis}: out = ${g.formula}, but the ${which} window lies entirely in the ` +
          `padding (pad_lo ≤ window − 1 = ${g.kernel - 1} and (out − 1)·stride < pad_lo + in = ` +
          `${g.padLo + g.sizeIn} are needed)`, g.axis);
      }
    }
    return axes;
  }

  const positive = (layer, field, value) => {
    if (!isInt(value) || value < 1) {
      throw new GeometryError("layer", layer,
        `layer '${layer}': ${field} must be an int >= 1, got ${JSON.stringify(value)}`);
    }
    return value;
  };

  const axisPair = (a, b) => (a === b ? `${a}` : `${a}×${b}`);

  // The rows of summary.shape_table for layer dicts (config.model.layers) on inputs (H, W, C).
  // Returns {rows, error}: rows up to the layer that fails; error a GeometryError or null.
  function planNetwork(layers, inputShape) {
    const rows = [];
    const counts = {};
    let shape = inputShape.slice();
    const field = [1, 1], jump = [1, 1], start = [0, 0];
    let image = true;
    try {
      for (const spec of layers) {
        const kind = spec.type;
        counts[kind] = (counts[kind] || 0) + 1;
        const name = `${kind}${counts[kind]}`;
        const row = { name, kind, input: shape.slice(), geometry: null, params: 0, macs: 0 };
        if (["conv", "local", "pool"].includes(kind)) {
          if (shape.length !== 3) {
            throw new GeometryError("shape", name, `layer '${name}' (${kind}) needs an image ` +
              `input (height, width, channels): a ${kind} layer cannot follow a dense layer`);
          }
          const [h, w, c] = shape;
          if (kind === "pool") {
            if (spec.pool_type === "none") {
              row.detail = "none";
              row.output = [h, w, c];
            } else {
              const stride = spec.stride == null || spec.stride === "window" ? spec.window : spec.stride;
              row.geometry = poolGeometry(name, [h, w], spec.window, stride, spec.padding ?? "VALID");
              row.output = [row.geometry[0].out, row.geometry[1].out, c];
              row.detail = `${spec.pool_type} ${row.geometry[0].kernel}×${row.geometry[1].kernel}`;
            }
          } else {
            const maps = positive(name, "features", spec.features);
            const geo = windowGeometry(name, kind, [h, w], spec.kernel ?? 5, spec.stride ?? 1,
              spec.padding ?? "VALID", spec.dilation ?? 1);
            const area = geo[0].kernel * geo[1].kernel, positions = geo[0].out * geo[1].out;
            row.geometry = geo;
            row.output = [geo[0].out, geo[1].out, maps];
            row.params = kind === "conv" ? area * c * maps + maps : positions * (area * c + 1) * maps;
            row.macs = positions * maps * area * c;
            row.detail = `${maps} maps ${geo[0].kernel}×${geo[1].kernel}, ${kind === "conv" ? "shared" : "unshared"}`;
          }
        } else if (kind === "dense") {
          const units = positive(name, "features", spec.features);
          const nIn = shape.reduce((a, b) => a * b, 1);
          row.output = [units];
          row.params = nIn * units + units;
          row.macs = nIn * units;
          row.detail = `${nIn}${shape.length > 1 ? " (flattened)" : ""} → ${units}`;
        } else {  // dropout
          row.output = shape.slice();
          row.detail = `p=${spec.rate}`;
        }
        if (row.geometry) {
          row.geometry.forEach((g, a) => {
            field[a] += (g.span - 1) * jump[a];
            start[a] -= g.padLo * jump[a];
            jump[a] *= g.stride;
          });
          const f = row.geometry.map((g) => g.formula);
          row.formula = f[0] === f[1] ? f[0] : row.geometry.map((g, a) => `${g.axis[0]}: ${f[a]}`).join(" | ");
        } else {
          row.formula = "";
          if (kind === "dense") {  // a dense unit sees the whole image (as summary.py)
            image = false;
            field[0] = inputShape[0];
            field[1] = inputShape[1];
          }
        }
        row.image = image && row.output.length === 3;
        row.field = field.slice();
        row.receptiveField = axisPair(field[0], field[1]);
        row.jump = jump.slice();
        row.jumpText = kind === "dense" ? "—" : axisPair(jump[0], jump[1]);
        row.start = start.slice();
        rows.push(row);
        shape = row.output;
      }
    } catch (error) {
      if (!(error instanceof GeometryError)) throw error;
      return { rows, error };
    }
    return { rows, error: null };
  }

  return { GeometryError, pair, resolvePadding, axisGeometry, windowGeometry, poolGeometry, planNetwork };
})();
