mod backup;
mod browser;
mod check;
mod grid_smoke;
mod hostile;
mod support;
mod web;
