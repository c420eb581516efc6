mod support;
mod grid_smoke;
