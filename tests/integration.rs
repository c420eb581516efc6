mod backup;
mod browser;
mod check;
mod grid_smoke;
mod support;
mod web;
