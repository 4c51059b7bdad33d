// WGSL files (wgsl/) are bundled as text (tools/build.mjs: loader ".wgsl": "text").
declare module "*.wgsl" {
  const code: string;
  export default code;
}
