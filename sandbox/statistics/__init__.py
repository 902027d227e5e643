"""Statistics for the authority: what was opened, asked for, decided, agreed, exported and
breached (Shanghai Art.41 监测统计; Wuxi Art.26 评估考核)."""
