mod grid_smoke;
mod support;
mod backup;
mod check;
mod web;
mod browser;
