mod backup;
mod browser;
mod budget;
mod check;
mod grid_smoke;
mod hostile;
mod support;
mod web;
