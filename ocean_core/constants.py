"""Physical constants (Veros 1.7 defaults)."""

#: pi as written in Veros's settings (38 digits; identical to numpy.pi in float64)
PI = 3.14159265358979323846264338327950588
#: Earth radius [m]
RADIUS = 6370.0e3
#: metres per degree
DEGTOM = RADIUS / 180.0 * PI
#: Earth's rotation rate [1/s]
OMEGA = PI / 43082.0
#: reference density [kg/m^3]
RHO_0 = 1024.0
#: gravitational acceleration [m/s^2]
GRAV = 9.81
#: Adams-Bashforth stabilisation: weights (1.5 + eps, -(0.5 + eps))
AB_EPS = 0.1
