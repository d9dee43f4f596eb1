// The one symbol SDK classes need to render in a notebook; the rest of advmoe/display loads on use.

/** The symbol a Jupyter JavaScript kernel (Deno's) calls on a cell's value to render it. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;
