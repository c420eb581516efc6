mod grid_smoke;
mod support;
mod backup;
mod web;
mod browser;
