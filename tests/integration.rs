mod grid_smoke;
mod support;
mod backup;
