extern int helper(void);
int use(void) { return helper(); }
