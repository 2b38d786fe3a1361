int PQconnectdb(void) { return 0; }
