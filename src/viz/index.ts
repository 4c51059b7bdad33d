export { encodePNG, type Image } from "./png.js";
export { tileGrid, filterGrid, activationGrid, saliency, occlusion, classModel, heatImage, type Forward } from "./maps.js";
