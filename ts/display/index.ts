// advmoe/display: notebook views of models, evaluation reports and training runs.
// A separate entry point, so plain scripts never load it unless they import it.
export type { Displayable, MimeBundle, Publish } from "./bundle.js";
export { displayable, JUPYTER_DISPLAY, kernelPublisher, VEGA_LITE_MIME, VEGA_LITE_SCHEMA } from "./bundle.js";
export { datasetBundle, trainerBundle } from "./handles.js";
export { displayModel, modelBundle } from "./model.js";
export { displayReport, reportBundle, reportChart, reportRows } from "./report.js";
export type { EpochPoint, TrainingDisplayOptions } from "./training.js";
export { TrainingDisplay, watchTraining } from "./training.js";
