extern int PQconnectdb(void);
int connect(void) { return PQconnectdb(); }
